package host

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/imgbase/imgbase/internal/boot"
	"github.com/imgbase/imgbase/internal/boot/kernel"
	"github.com/imgbase/imgbase/internal/layout"
)

// BootManager makes a boot.Manager the Host's Booter.
type BootManager struct {
	M *boot.Manager
	// HostBoot is the running system's /boot, where the kernels of a layer
	// made from the installed root are (its own /boot dir is empty).
	HostBoot string
}

// AddLayer writes the layer's entry with the kernel of its own /boot, or
// of the host's when it has none, and makes it the default when it is the
// newest layer of the newest base (after a successful try, in try mode).
func (b BootManager) AddLayer(ctx context.Context, l BootLayer) error {
	src := filepath.Join(l.Mnt, "boot")
	if _, err := kernel.Newest(src); err != nil {
		src = b.HostBoot
	}
	try := l.Try && l.Latest
	if b.M.Loader == boot.LoaderNone {
		// Entries are still written (a loader set up later reads them),
		// but there is nothing to select with.
		b.M.Log.Warn("no boot loader imgbase knows in /boot selects the new entry; see 'imgbase boot --setup'", "layer", l.Name)
		_, err := b.M.AddLayer(ctx, boot.Layer{Name: l.Name, NVR: l.Base, VG: l.VG, KernelSrcDir: src}, false)
		return err
	}
	if _, err := b.M.AddLayer(ctx, boot.Layer{Name: l.Name, NVR: l.Base, VG: l.VG, KernelSrcDir: src}, try); err != nil {
		return err
	}
	if l.Latest && !try {
		if b.M.Dry != nil {
			// The entry was only printed: there is nothing to select yet.
			fmt.Fprintf(b.M.Dry, "# make %s the default boot entry\n", l.Name)
			return nil
		}
		return b.M.SetDefault(ctx, l.Name)
	}
	return nil
}

// RemoveLayer removes the layer's entry and the boot files only it used.
// A layer without an entry (one on an empty base) has nothing to remove.
func (b BootManager) RemoveLayer(ctx context.Context, name string) error {
	if err := b.M.RemoveLayer(ctx, name); err != nil && !errors.Is(err, boot.ErrNoEntry) {
		return err
	}
	return nil
}

// Default is the layer that boots by default; a host whose loader imgbase
// does not know has none.
func (b BootManager) Default() (string, error) {
	def, err := b.M.Default()
	if errors.Is(err, boot.ErrNoLoader) {
		return "", nil
	}
	return def, err
}

// FilesDir is where the entries and the layers' kernels are: /boot, or the
// ESP or XBOOTLDR partition for systemd-boot.
func (b BootManager) FilesDir() string { return b.M.Boot }

// Ready says whether the boot entries can be read and written now.
func (b BootManager) Ready() error { return b.M.Ready() }

// Setup wires the boot loader to read imgbase's entries.
func (b BootManager) Setup(ctx context.Context) error { return b.M.Setup(ctx) }

// BootLayers lists the layers of t for the boot package's checks. Kernel
// directories are left empty: recreating an entry needs the layer mounted.
func BootLayers(t *layout.Tree) []boot.Layer {
	var out []boot.Layer
	for _, l := range t.Layers() {
		out = append(out, boot.Layer{Name: l.Name(), NVR: l.Base.Name(), VG: t.VG})
	}
	return out
}

// RecoverBoot repairs the boot entries of t's layers: entries of missing
// layers go, layers without an entry (or with missing files) get one again
// from the kernel in their own /boot (mounted read-only for the purpose) or
// the host's, the loader is rewired. It returns the problems that remain.
func (h *Host) RecoverBoot(ctx context.Context, b BootManager) ([]boot.Problem, error) {
	t, err := h.Managed(ctx)
	if err != nil {
		return nil, err
	}
	layers := BootLayers(t)
	ps, err := b.M.Check(ctx, layers)
	if err != nil {
		return nil, err
	}
	need := map[string]bool{}
	for _, p := range ps {
		if p.Kind == boot.NoEntry || p.Kind == boot.MissingFile {
			need[p.Layer] = true
		}
	}
	for i := range layers {
		if !need[layers[i].Name] {
			continue
		}
		l := t.Layer(layers[i].Name)
		if !l.LV.Active() {
			h.Log.Warn("cannot recreate the boot entry of an inactive layer; activate it with 'lvchange -ay'", "layer", l.Name())
			continue
		}
		mnt := h.MountPoint(l.Name())
		if err := h.Mkdir(mnt); err != nil {
			return nil, err
		}
		fstype, err := h.FS().Type(ctx, l.LV.DevPath())
		if err != nil || fstype == "" {
			continue // no filesystem: no kernel to boot
		}
		opts := []string{"ro"}
		if fstype == "xfs" {
			opts = append(opts, "norecovery", "nouuid")
		} else {
			opts = append(opts, "noload")
		}
		if err := h.FS().WorkMount(ctx, l.LV.DevPath(), mnt, fstype, opts...); err != nil {
			return nil, err
		}
		defer h.FS().WorkUnmount(context.WithoutCancel(ctx), mnt)
		layers[i].KernelSrcDir = filepath.Join(mnt, "boot")
		if _, err := kernel.Newest(layers[i].KernelSrcDir); err != nil {
			layers[i].KernelSrcDir = b.HostBoot
		}
	}
	return b.M.Recover(ctx, layers)
}

// BootGuard returns a boot.Manager Guard for dir, the boot directory as the
// running system sees it ("/boot"): an error when dir is on the root
// filesystem. The entries live on a partition of their own, which the boot
// loader reads (it cannot read a thin LV); when that partition is not
// mounted, dir is the layer's own directory, and what is read there is not
// what boots, and what is written there is never booted. A mount table that
// cannot be read stops nothing.
func (h *Host) BootGuard(dir string) func() error {
	return func() error {
		mp, err := h.MountOf(dir)
		if err != nil || mp != "/" {
			return nil
		}
		return fmt.Errorf("cannot use the boot entries: %s is not mounted, so it is the layer's own directory, which the boot loader never reads; mount the boot partition ('mount %s', and give it a line in /etc/fstab) and try again", dir, dir)
	}
}

// bootFilesDir is where the layers' kernels are copied (see
// BootManager.FilesDir); /boot when the Booter does not say.
func (h *Host) bootFilesDir() string {
	if d, ok := h.Boot.(interface{ FilesDir() string }); ok {
		return d.FilesDir()
	}
	return h.Path("boot")
}

// bootReady stops a verb before it changes anything when the boot entries
// cannot be reached (see BootGuard).
func (h *Host) bootReady() error {
	if r, ok := h.Boot.(interface{ Ready() error }); ok {
		return r.Ready()
	}
	return nil
}

// KernelCmdline is what the layer's /etc/kernel/cmdline holds (see
// boot.Manager.KernelCmdline).
func (b BootManager) KernelCmdline(vg, lv, layer string) string {
	return b.M.KernelCmdline(vg, lv, layer)
}
