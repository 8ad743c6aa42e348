package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/imgbase/imgbase/internal/atomicfile"
	"github.com/imgbase/imgbase/internal/boot"
	"github.com/imgbase/imgbase/internal/filesystem"
	"github.com/imgbase/imgbase/internal/hooks"
	"github.com/imgbase/imgbase/internal/journal"
	"github.com/imgbase/imgbase/internal/layout"
	"github.com/imgbase/imgbase/internal/lvm"
	"github.com/imgbase/imgbase/internal/nvr"
	"github.com/imgbase/imgbase/internal/undo"
	"github.com/imgbase/imgbase/internal/volume"
	"golang.org/x/sys/unix"
)

// ErrRefused marks a request imgbase will not carry out as asked; nothing
// was changed.
type ErrRefused struct{ Reason string }

func (e *ErrRefused) Error() string { return e.Reason }

func refuse(format string, args ...any) error {
	return &ErrRefused{Reason: fmt.Sprintf(format, args...)}
}

// LayerResult says what AddLayer made.
type LayerResult struct {
	Name   string
	Origin string
	// NoFS is set when the base holds no filesystem yet: the layer exists
	// but has no fstab and no boot entry.
	NoFS bool
}

// AddLayer adds a layer. target is a base (the layer is a snapshot of it), a
// layer (a snapshot of that layer) or "" (the newest layer of the newest
// base, or that base itself when it has no layer yet).
func (h *Host) AddLayer(ctx context.Context, target string) (*LayerResult, error) {
	t, err := h.Creating(ctx)
	if err != nil {
		return nil, err
	}
	if err := h.bootReady(); err != nil {
		return nil, err
	}
	base, origin, err := layerOrigin(t, target)
	if err != nil {
		return nil, err
	}
	name := base.NextLayerName()
	if err := nvr.ValidLVName(name); err != nil {
		return nil, refuse("cannot add a layer to %s: %v", base.Name(), err)
	}
	if t.LV(name) != nil {
		return nil, refuse("cannot add layer %s: an LV of that name exists in %s; remove or rename it first", name, t.VG)
	}
	if err := h.preHook(ctx, hooks.LayerAdd, base.Name(), name); err != nil {
		return nil, err
	}
	res := &LayerResult{Name: name, Origin: origin}
	if err := h.journal().Run(ctx, h.addLayerTx(t, base, origin, res)); err != nil {
		return nil, err
	}
	h.postHook(ctx, hooks.LayerAdd, base.Name(), name)
	return res, nil
}

// addLayerTx lays out layer --add as journal steps, all before the commit:
// a crash or a power cut anywhere in it leaves no layer without its entry
// (nor an entry of a half-prepared layer); 'imgbase recover', at boot,
// takes it all back.
func (h *Host) addLayerTx(t *layout.Tree, base *layout.Base, origin string, res *LayerResult) journal.Tx {
	vg, name := t.VG, res.Name
	mnt := h.MountPoint(name)
	latest := "n"
	if base == t.LatestBase() {
		latest = "y"
	}
	h.Log.Info("adding layer", "layer", name, "origin", origin)
	return journal.Tx{Name: "add layer " + name, Steps: []journal.Step{
		{Kind: stepCreateLayer, Args: journal.Args{"vg": vg, "lv": name, "origin": origin, "mnt": mnt}},
		{Kind: stepPrepareLayer, Args: journal.Args{"vg": vg, "lv": name, "mnt": mnt}, Do: func(ctx context.Context) error {
			dev := "/dev/" + vg + "/" + name
			fstype, err := h.layerFSType(ctx, t, origin, dev)
			if err != nil {
				return err
			}
			if fstype == "" {
				h.Log.Warn("the layer has no fstab and no boot entry; its base holds no filesystem yet", "layer", name, "base", base.Name())
				res.NoFS = true
				return nil
			}
			return h.prepareLayer(ctx, &undo.Stack{Log: h.Log}, t, base, name, dev, fstype,
				layerSetup{noBoot: true, sealedOrigin: sealedOrigin(t, base, origin)})
		}},
		{Kind: stepBootEntry, Args: journal.Args{"vg": vg, "lv": name, "base": base.Name(), "mnt": mnt, "try": "y", "latest": latest}, Do: func(ctx context.Context) error {
			if res.NoFS {
				return nil
			}
			return h.bootEntryStep(ctx, journal.Args{"vg": vg, "lv": name, "base": base.Name(), "mnt": mnt, "try": "y", "latest": latest})
		}},
	}}
}

// sealedOrigin says origin is the read-only base itself. A sealed base is
// never written again, so a snapshot of it is as clean as its superblock
// says it was when sealed: no check needed.
func sealedOrigin(t *layout.Tree, base *layout.Base, origin string) bool {
	lv := t.LV(origin)
	return lv != nil && origin == base.Name() && lv.ReadOnly()
}

// layerOrigin resolves the argument of layer --add.
func layerOrigin(t *layout.Tree, target string) (*layout.Base, string, error) {
	if target == "" {
		if l := t.LatestLayer(); l != nil && l.Base == t.LatestBase() {
			return l.Base, l.Name(), nil
		}
		b := t.LatestBase()
		if b == nil {
			return nil, "", refuse("cannot add a layer: %s has no base; add one with 'imgbase base --add NVR --size SIZE IMAGE'", t.VG)
		}
		return b, b.Name(), nil
	}
	if b := t.Base(target); b != nil {
		return b, b.Name(), nil
	}
	if l := t.Layer(target); l != nil {
		return l.Base, l.Name(), nil
	}
	return nil, "", refuse("cannot add a layer on %q: no such base or layer; see 'imgbase layout'", target)
}

// layerSetup is what a verb adds to the preparation of a new layer.
type layerSetup struct {
	// fill runs with the new layer mounted at mnt, before its fstab is
	// written (update carries the admin's configuration here).
	fill func(ctx context.Context, mnt string) error
	// try boots the layer first in try mode.
	try bool
	// noBoot leaves the boot entry to a later step, and the layer mounted
	// for it.
	noBoot bool
	// clean says the base was just written from an image that passed its
	// filesystem check, so the layer's need not be checked again.
	clean bool
	// sealedOrigin says the layer is a snapshot of a read-only base: when
	// its superblock says it is clean, it is.
	sealedOrigin bool
}

// createLayer snapshots origin as layer name of base and prepares its
// filesystem, pushing undo steps onto u.
func (h *Host) createLayer(ctx context.Context, u *undo.Stack, t *layout.Tree, base *layout.Base, origin, name string, setup layerSetup) (*LayerResult, error) {
	h.Log.Info("adding layer", "layer", name, "origin", origin)
	err := h.LVM().Snapshot(ctx, t.VG, origin, name, lvm.SnapshotOpts{
		Tags:     []string{lvm.TagLayer},
		Activate: true,
	})
	if err != nil {
		return nil, err
	}
	u.Push("create "+name, func(ctx context.Context) error { return h.LVM().Remove(ctx, t.VG, name) })
	res := &LayerResult{Name: name, Origin: origin}
	dev := "/dev/" + t.VG + "/" + name
	fstype, err := h.layerFSType(ctx, t, origin, dev)
	if err != nil {
		return nil, err
	}
	if fstype == "" {
		h.Log.Warn("the layer has no fstab and no boot entry; its base holds no filesystem yet", "layer", name, "base", base.Name())
		res.NoFS = true
		return res, nil
	}
	setup.sealedOrigin = sealedOrigin(t, base, origin)
	if err := h.prepareLayer(ctx, u, t, base, name, dev, fstype, setup); err != nil {
		return nil, err
	}
	return res, nil
}

// layerFSType probes the new layer's filesystem. A dry run has no layer to
// probe, so it probes the origin when that is active and else assumes the
// running root's type.
func (h *Host) layerFSType(ctx context.Context, t *layout.Tree, origin, dev string) (string, error) {
	if !h.Dry() {
		return h.FS().Type(ctx, dev)
	}
	if lv := t.LV(origin); lv != nil && lv.Active() {
		return h.FS().Type(ctx, lv.DevPath())
	}
	if h.RootFSType != nil {
		return h.RootFSType(), nil
	}
	return "ext4", nil
}

// prepareLayer gives a new layer its own filesystem UUID, makes its fstab
// name it as / with discard, and writes its boot entry.
func (h *Host) prepareLayer(ctx context.Context, u *undo.Stack, t *layout.Tree, base *layout.Base, name, dev, fstype string, setup layerSetup) error {
	mnt := h.MountPoint(name)
	if err := h.Mkdir(mnt); err != nil {
		return err
	}
	clean := setup.clean
	if !clean && setup.sealedOrigin {
		sb, ok := h.FS().Probe(dev)
		clean = ok && sb.Clean
	}
	if err := h.FS().NewUUID(ctx, dev, fstype, mnt, clean); err != nil {
		return err
	}
	opts := []string{"discard"}
	if fstype == "xfs" {
		opts = append(opts, "nouuid")
	}
	if err := h.FS().WorkMount(ctx, dev, mnt, fstype, opts...); err != nil {
		return err
	}
	err := dropJournal(mnt, h.Dry())
	if err == nil && setup.fill != nil {
		err = setup.fill(ctx, mnt)
	}
	if err == nil {
		err = h.editLayer(ctx, t, base, name, dev, fstype, mnt, setup)
	}
	if err == nil && setup.noBoot && !h.Dry() {
		// The later boot entry step reads the kernel from this mount, and
		// unmounts it; what was written is on disk before the commit.
		return syncFS(mnt)
	}
	if uerr := h.FS().WorkUnmount(ctx, mnt); uerr != nil && err == nil {
		err = uerr
	}
	if err != nil {
		return err
	}
	if !h.Dry() {
		os.Remove(mnt)
	}
	if h.Boot != nil && !setup.noBoot {
		u.Push("boot entry of "+name, func(ctx context.Context) error { return h.Boot.RemoveLayer(ctx, name) })
	}
	return nil
}

// editLayer changes files inside the mounted layer.
func (h *Host) editLayer(ctx context.Context, t *layout.Tree, base *layout.Base, name, dev, fstype, mnt string, setup layerSetup) error {
	fstabPath := filepath.Join(mnt, "etc/fstab")
	var old []byte
	if !h.Dry() {
		var err error
		old, err = os.ReadFile(fstabPath)
		if err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("cannot read the fstab of %s: %w", name, err)
		}
	}
	fstab := filesystem.SetRoot(old, dev, fstype)
	// /boot, the ESP, swap and the volumes are the host's, shared by every
	// layer: a layer made from a base gets the image's fstab, which knows
	// none of them.
	running, err := os.ReadFile(h.Path("etc/fstab"))
	if err != nil && (len(t.Volumes) > 0 || !os.IsNotExist(err)) {
		return fmt.Errorf("cannot read the running fstab for what every layer mounts: %w", err)
	}
	fstab = filesystem.HostWide(fstab, running)
	if len(t.Volumes) > 0 {
		fstab = volume.AddAll(fstab, volume.Entries(running, t))
	}
	if err := h.WriteFile(fstabPath, fstab, 0o644, ""); err != nil {
		return err
	}
	if h.Boot == nil {
		return nil
	}
	if err := h.installUnits(mnt); err != nil {
		return err
	}
	if err := h.writeKernelCmdline(t, name, mnt); err != nil {
		return err
	}
	if setup.noBoot {
		return nil
	}
	return h.Boot.AddLayer(ctx, BootLayer{
		Name: name, Base: base.Name(), VG: t.VG, Dev: dev, Mnt: mnt,
		Latest: base == t.LatestBase(), Try: setup.try,
	})
}

// writeKernelCmdline names the layer in its /etc/kernel/cmdline: copied
// from the running layer (or absent in the image), it would make
// kernel-install inside the layer write an entry booting another LV.
func (h *Host) writeKernelCmdline(t *layout.Tree, name, mnt string) error {
	kc, ok := h.Boot.(interface {
		KernelCmdline(vg, lv, layer string) string
	})
	if !ok {
		return nil
	}
	p := filepath.Join(mnt, boot.KernelCmdlinePath)
	if !h.Dry() {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("cannot write the kernel command line of %s: %w", name, err)
		}
	}
	return h.WriteFile(p, []byte(kc.KernelCmdline(t.VG, name, name)), 0o644, "")
}

// dropJournal removes the journal a snapshot of the running layer copied
// into the new layer at mnt: it records the transaction adding that layer,
// which is the old layer's to finish or undo, never the new one's.
func dropJournal(mnt string, dry bool) error {
	if dry {
		return nil
	}
	p := filepath.Join(mnt, JournalFile)
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cannot remove the journal copied into the new layer: %w", err)
	}
	return nil
}

// RemoveLayer removes a layer and its boot entry; the running layer is
// refused. Like RemoveBase it is journaled, entry first.
func (h *Host) RemoveLayer(ctx context.Context, name string) error {
	t, err := h.Managed(ctx)
	if err != nil {
		return err
	}
	if err := h.bootReady(); err != nil {
		return err
	}
	l := t.Layer(name)
	if l == nil {
		return refuse("cannot remove layer %q: no such layer; see 'imgbase layout --layers'", name)
	}
	if cur := h.CurrentLayer(t); cur != nil && cur.Name() == name {
		return refuse("cannot remove layer %s: it is the running layer; boot another layer first", name)
	}
	if l.LV.Active() && l.LV.Major >= 0 && h.isMounted(l.LV) {
		return refuse("cannot remove layer %s: it is mounted; unmount it first", name)
	}
	if err := h.refuseDefault(name); err != nil {
		return err
	}
	if err := h.preHook(ctx, hooks.LayerRemove, l.Base.Name(), name); err != nil {
		return err
	}
	if err := h.journal().Run(ctx, h.removalTx("remove layer "+name, t.VG, []string{name}, []string{name})); err != nil {
		return err
	}
	h.postHook(ctx, hooks.LayerRemove, l.Base.Name(), name)
	return nil
}

// isMounted reports whether the LV's device is mounted anywhere, read from
// the kernel's mount table of the running system.
func (h *Host) isMounted(lv *lvm.LV) bool {
	mounts, err := h.Mounts()
	if err != nil {
		return false
	}
	for _, m := range mounts {
		if m.Major == lv.Major && m.Minor == lv.Minor {
			return true
		}
	}
	return false
}

// refuseDefault refuses to remove the layer that boots by default: the
// host would have nothing to boot.
func (h *Host) refuseDefault(layers ...string) error {
	if h.Boot == nil {
		return nil
	}
	def, err := h.Boot.Default()
	if err != nil {
		return fmt.Errorf("cannot tell the default boot entry: %w", err)
	}
	for _, l := range layers {
		if l == def {
			return refuse("cannot remove layer %s: it boots by default; choose another with 'imgbase boot --set-default LAYER' first", l)
		}
	}
	return nil
}

// installUnits gives a layer imgbase's units, and the imgbase they run,
// when its image does not ship the package: the units run imgbase at boot
// (marking a trial boot good, recovering an interrupted update), and
// without them every trial of that layer would fall back. An image that
// carries the package keeps its own units and binary untouched.
func (h *Host) installUnits(mnt string) error {
	if boot.ShipsUnits(mnt) {
		return nil
	}
	bin, err := h.installSelf(mnt)
	if err != nil {
		return err
	}
	var dry func(string)
	if h.Dry() {
		dry = func(p string) { fmt.Fprintf(h.Out, "# write %s\n", p) }
	}
	return boot.InstallUnits(mnt, bin, dry)
}

// installSelf returns the path, inside the layer, of the imgbase its units
// are to run: the image's own if it has one, else a copy of the running
// imgbase put into /usr/local/sbin.
func (h *Host) installSelf(mnt string) (string, error) {
	for _, dir := range []string{"usr/local/sbin", "usr/local/bin", "usr/sbin", "usr/bin", "sbin", "bin"} {
		if st, err := os.Stat(filepath.Join(mnt, dir, "imgbase")); err == nil && st.Mode().IsRegular() {
			return "/" + dir + "/imgbase", nil
		}
	}
	const inLayer = "/usr/local/sbin/imgbase"
	dst := filepath.Join(mnt, inLayer)
	if h.Dry() {
		fmt.Fprintf(h.Out, "# write %s\n", dst)
		return inLayer, nil
	}
	self := h.Self
	if self == "" {
		var err error
		if self, err = os.Executable(); err != nil {
			return "", fmt.Errorf("cannot find imgbase's own executable to put into the layer: %w", err)
		}
	}
	data, err := os.ReadFile(self)
	if err != nil {
		return "", fmt.Errorf("cannot copy imgbase into the layer: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", fmt.Errorf("cannot copy imgbase into the layer: %w", err)
	}
	h.Log.Info("copying this imgbase into the layer, whose image has none", "to", dst)
	if err := atomicfile.Write(dst, data, 0o755); err != nil {
		return "", err
	}
	return inLayer, nil
}

// syncFS flushes the filesystem mounted at dir to disk.
func syncFS(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("cannot sync %s: %w", dir, err)
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("cannot sync %s: %w", dir, err)
	}
	return nil
}
