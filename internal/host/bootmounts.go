package host

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/imgbase/imgbase/internal/boot"
	"github.com/imgbase/imgbase/internal/command"
)

// BootMounts returns what boot.Locate needs to find the ESP and an
// XBOOTLDR partition: for a mount point, its filesystem type from the
// mount table and its GPT partition type from udev's database (the
// ID_PART_ENTRY_TYPE udev's blkid builtin records), else from
// "blkid -p". It returns nil when the mount table cannot be read.
func (h *Host) BootMounts(ctx context.Context) boot.Mounts {
	infos, err := h.Mounts()
	if err != nil {
		h.Log.Debug("cannot read the mount table: finding the ESP by its files", "err", err)
		return nil
	}
	return func(dir string) (boot.Mount, bool) {
		// The last mount on dir is the one seen there.
		for i := len(infos) - 1; i >= 0; i-- {
			mi := infos[i]
			if mi.Mountpoint != dir {
				continue
			}
			return boot.Mount{FSType: mi.FSType, PartType: h.partType(ctx, mi.Major, mi.Minor, mi.Source)}, true
		}
		return boot.Mount{}, false
	}
}

func (h *Host) partType(ctx context.Context, major, minor int, source string) string {
	if data, err := os.ReadFile(h.Path(fmt.Sprintf("run/udev/data/b%d:%d", major, minor))); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "E:ID_PART_ENTRY_TYPE="); ok {
				return strings.ToLower(strings.TrimSpace(v))
			}
		}
	}
	if !strings.HasPrefix(source, "/dev/") {
		return ""
	}
	out, err := h.Run.Run(ctx, command.Read("blkid", "-p", "-o", "value", "-s", "PART_ENTRY_TYPE", source))
	if err != nil {
		h.Log.Debug("cannot read the partition type", "dev", source, "err", err)
		return ""
	}
	return strings.ToLower(strings.TrimSpace(string(out)))
}
