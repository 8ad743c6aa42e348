package host

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/imgbase/imgbase/internal/boot"
	"golang.org/x/sys/unix"
)

// ErrNotOnLayer means the running root is no imgbase layer: a kernel hook
// has nothing to follow there.
var ErrNotOnLayer = errors.New("the running root is not an imgbase layer")

// SyncKernel makes the running layer's boot entry follow a kernel change
// made inside it (see boot.Manager.SyncKernel): version is what the
// distribution's hook names ("" by hand), removed says a kernel package
// was removed. The layer is the one / is mounted from; img.bootid= on the
// kernel command line must name it, or the entry to change is unclear.
func (h *Host) SyncKernel(ctx context.Context, b BootManager, version string, removed bool) (boot.KernelSync, error) {
	t, err := h.Managed(ctx)
	if err != nil {
		return boot.KernelSync{}, err
	}
	cur := h.CurrentLayer(t)
	if cur == nil {
		return boot.KernelSync{}, ErrNotOnLayer
	}
	if booted := b.M.Running(); booted != cur.Name() {
		return boot.KernelSync{}, fmt.Errorf("cannot follow the kernel change: / is layer %s but the kernel command line names %q (img.bootid=); boot the layer from its own entry and try again", cur.Name(), booted)
	}
	if err := h.bootReady(); err != nil {
		return boot.KernelSync{}, err
	}
	return b.M.SyncKernel(ctx, boot.KernelChange{
		Layer: cur.Name(), Version: version, Removed: removed,
		SrcDir:    b.HostBoot,
		Installed: h.hasModules,
	})
}

// hasModules reports whether the running root holds the modules of
// kernel version: a package installed in this layer, not in another one
// whose kernel files share /boot's top level.
func (h *Host) hasModules(version string) bool {
	for _, name := range []string{"kernel", "modules.builtin", "modules.order"} {
		if _, err := os.Stat(h.Path("lib/modules/" + version + "/" + name)); err == nil {
			return true
		}
	}
	return false
}

// Chrooted reports whether this process runs in a chroot (an image being
// built, a rescue shell): a kernel installed there is not the running
// layer's, though /proc/cmdline names that layer.
func Chrooted() bool {
	var root, init unix.Stat_t
	if unix.Stat("/", &root) != nil || unix.Stat("/proc/1/root", &init) != nil {
		return false
	}
	return root.Dev != init.Dev || root.Ino != init.Ino
}
