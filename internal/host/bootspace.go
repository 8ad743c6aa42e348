package host

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/imgbase/imgbase/internal/image/preflight"
	"github.com/imgbase/imgbase/internal/layout"
)

// bootSpace is what the /boot part of an update's pre-flight works with:
// the free space of the filesystem holding /boot, and what the new
// layer's kernel and initramfs will take there. The new files are not
// known before the layer exists; the running layer's (or the running
// kernel's) stand in for them: one image's kernel is much like the next's.
// When /boot cannot be measured nothing is refused for it.
func (h *Host) bootSpace(t *layout.Tree) preflight.Boot {
	u, err := h.FSUsage(h.bootFilesDir())
	if err != nil {
		h.Log.Debug("cannot measure /boot: not checking its space", "err", err)
		return preflight.Boot{Free: 1 << 62}
	}
	need := int64(0)
	if cur := h.CurrentLayer(t); cur != nil {
		need = dirBytes(filepath.Join(h.bootFilesDir(), cur.Name()), false)
	}
	if need == 0 {
		need = h.runningKernelBytes()
	}
	return preflight.Boot{Free: int64(u.Free), Needed: need}
}

// runningKernelBytes is the size of the running kernel's files in /boot
// (Debian's and Fedora's names), 0 when there are none.
func (h *Host) runningKernelBytes() int64 {
	rel, err := os.ReadFile(h.Path("proc/sys/kernel/osrelease"))
	if err != nil {
		return 0
	}
	v := strings.TrimSpace(string(rel))
	var n int64
	for _, name := range []string{"vmlinuz-" + v, "initrd.img-" + v, "initramfs-" + v + ".img"} {
		if fi, err := os.Stat(h.Path(filepath.Join("boot", name))); err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
	}
	return n
}

// bootBytes is what removing base frees in /boot: its layers' files that
// no other name links to.
func (h *Host) bootBytes(b *layout.Base) int64 {
	var n int64
	for _, l := range b.Layers {
		n += dirBytes(filepath.Join(h.bootFilesDir(), l.Name()), true)
	}
	return n
}

// dirBytes adds up the regular files in dir (not below it); with
// onlyUnlinked, only those with a single name.
func dirBytes(dir string, onlyUnlinked bool) int64 {
	entries, err := os.ReadDir(dir) // a layer without boot files has none
	if err != nil {
		return 0
	}
	var n int64
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && onlyUnlinked && st.Nlink > 1 {
			continue
		}
		n += fi.Size()
	}
	return n
}
