package boot

import (
	"bytes"
	"embed"
	"fmt"
	"os"
	"path/filepath"

	"github.com/imgbase/imgbase/internal/atomicfile"
)

// The distribution hooks the package ships (see each file): Debian's
// kernel and initramfs hooks, which make a layer's entry follow a kernel
// changed inside it, and the /etc/grub.d snippet that keeps grub.cfg
// sourcing imgbase's menu through update-grub.
//
//go:embed hooks/kernel-postinst hooks/kernel-postrm hooks/initramfs-post-update hooks/15_imgbase
var hookFiles embed.FS

// hookPaths maps where each hook goes, relative to the root, to its file.
var hookPaths = []struct{ dst, src string }{
	{"etc/kernel/postinst.d/zz-imgbase", "hooks/kernel-postinst"},
	{"etc/kernel/postrm.d/zz-imgbase", "hooks/kernel-postrm"},
	{"etc/initramfs/post-update.d/imgbase", "hooks/initramfs-post-update"},
	{"etc/grub.d/15_imgbase", "hooks/15_imgbase"},
}

// HookPaths are the files installHooks writes, relative to the root.
func HookPaths() []string {
	var out []string
	for _, h := range hookPaths {
		out = append(out, h.dst)
	}
	return out
}

// installHooks writes the hooks into root, running bin instead of the
// packaged binary.
func installHooks(root, bin string, dry func(string)) error {
	for _, h := range hookPaths {
		p := filepath.Join(root, h.dst)
		if dry != nil {
			dry(p)
			continue
		}
		content, err := hookFiles.ReadFile(h.src)
		if err != nil {
			return err
		}
		content = bytes.ReplaceAll(content, []byte(PackagedBinary), []byte(bin))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("cannot install %s: %w", p, err)
		}
		if err := atomicfile.Write(p, content, 0o755); err != nil {
			return fmt.Errorf("cannot install %s: %w", p, err)
		}
	}
	return nil
}
