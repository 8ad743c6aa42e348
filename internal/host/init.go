package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/imgbase/imgbase/internal/boot"
	"github.com/imgbase/imgbase/internal/filesystem"
	"github.com/imgbase/imgbase/internal/layout"
	"github.com/imgbase/imgbase/internal/lvm"
	"github.com/imgbase/imgbase/internal/nvr"
	"github.com/imgbase/imgbase/internal/undo"
)

// InitResult says what Init made.
type InitResult struct {
	VG, Pool, From string
	Base, Layer    string
}

// Init turns the thin LV holding / (from "" or "/"), or the one named
// (VG/LV or a /dev path), into base name plus its first layer name+1, and
// tags the volume group, the pool and the original LV. name "" takes the
// NVR from the running image's build metadata.
func (h *Host) Init(ctx context.Context, name, from string) (*InitResult, error) {
	t, err := h.Layout(ctx)
	if err != nil {
		return nil, err
	}
	if err := h.bootReady(); err != nil {
		return nil, err
	}
	if t.Initialized() {
		return nil, refuse("cannot init: %s is already managed by imgbase; see 'imgbase layout'", t.VG)
	}
	src, err := h.resolveFrom(t, from)
	if err != nil {
		return nil, err
	}
	if !src.IsThin() || src.Pool == "" {
		return nil, refuse("cannot init from %s: it is not a thin LV; imgbase needs / on a thin pool (anaconda: autopart --type=thinp)", src.FullName())
	}
	if name == "" {
		if name, err = readNVRFile(h.Root); err != nil {
			return nil, refuse("cannot init: no NVR given and %s is unreadable (%v); run 'imgbase layout --init NAME-VERSION-RELEASE'", "/"+NVRFile, err)
		}
	}
	// The tree is empty until the VG is tagged: check names against every LV.
	vgTree := &layout.Tree{VG: src.VG, All: t.All}
	if err := checkNewBase(vgTree, name); err != nil {
		return nil, err
	}
	base, _ := nvr.Parse(name)
	layerName := nvr.LayerName(base, 1)
	if vgTree.LV(layerName) != nil {
		return nil, refuse("cannot init: an LV named %s exists in %s; pick another NVR", layerName, src.VG)
	}

	h.Log.Info("initialising layout", "vg", src.VG, "pool", src.Pool, "from", src.Name, "base", name)
	u := &undo.Stack{Log: h.Log}
	if err := h.initSteps(ctx, u, t.All, src, name, layerName); err != nil {
		return nil, u.Rollback(ctx, err)
	}
	return &InitResult{VG: src.VG, Pool: src.Pool, From: src.Name, Base: name, Layer: layerName}, nil
}

func (h *Host) initSteps(ctx context.Context, u *undo.Stack, all []lvm.LV, src *lvm.LV, name, layerName string) error {
	c := h.LVM()
	if err := c.AddVGTag(ctx, src.VG, lvm.TagVG); err != nil {
		return err
	}
	u.Push("tag "+src.VG, func(ctx context.Context) error { return c.DelVGTag(ctx, src.VG, lvm.TagVG) })
	if err := c.AddLVTag(ctx, src.VG, src.Pool, lvm.TagPool); err != nil {
		return err
	}
	u.Push("tag "+src.Pool, func(ctx context.Context) error { return c.DelLVTag(ctx, src.VG, src.Pool, lvm.TagPool) })
	if err := c.AddLVTag(ctx, src.VG, src.Name, lvm.TagInit); err != nil {
		return err
	}
	u.Push("tag "+src.Name, func(ctx context.Context) error { return c.DelLVTag(ctx, src.VG, src.Name, lvm.TagInit) })
	// The base is a snapshot of the running root: lvm suspends (and so
	// freezes) the origin while it takes it, so the copy is consistent.
	// An ext root's copy is made clean (journal replayed) and given
	// metadata_csum_seed before it is sealed: each layer of it then needs
	// neither a check nor a rewrite of every metadata block for its UUID.
	sb, _ := h.FS().Probe("/dev/" + src.VG + "/" + src.Name)
	prepare := filesystem.IsExt(sb.Type)
	err := c.Snapshot(ctx, src.VG, src.Name, name, lvm.SnapshotOpts{
		Tags: []string{lvm.TagBase}, SkipActivation: true, ReadOnly: !prepare, Activate: prepare,
	})
	if err != nil {
		return err
	}
	u.Push("create "+name, func(ctx context.Context) error { return c.Remove(ctx, src.VG, name) })
	if prepare {
		dev := "/dev/" + src.VG + "/" + name
		if err := h.FS().Repair(ctx, dev); err != nil {
			return err
		}
		if err := h.FS().SeedChecksums(ctx, dev); err != nil {
			return err
		}
		if err := c.Seal(ctx, src.VG, name); err != nil {
			return err
		}
	}
	// Re-read the layout in the new shape without another lvs call.
	t, err := layout.Build(withInit(all, src, name))
	if err != nil {
		return err
	}
	base := t.Base(name)
	if base == nil {
		return fmt.Errorf("cannot find the new base %s in the layout", name)
	}
	if _, err = h.createLayer(ctx, u, t, base, name, layerName, layerSetup{}); err != nil {
		return err
	}
	if h.Boot != nil {
		// A host whose loader imgbase does not know keeps its entries;
		// 'imgbase boot --setup' wires a loader installed later.
		if err := h.Boot.Setup(ctx); err != nil && !errors.Is(err, boot.ErrNoLoader) {
			return err
		}
	}
	return nil
}

// resolveFrom finds the LV that --from names.
func (h *Host) resolveFrom(t *layout.Tree, from string) (*lvm.LV, error) {
	switch {
	case from == "" || from == "/":
		if h.RootDevice == nil {
			return nil, fmt.Errorf("cannot tell which LV holds /")
		}
		major, minor, err := h.RootDevice()
		if err != nil {
			return nil, err
		}
		if lv := t.ByDevice(major, minor); lv != nil {
			return lv, nil
		}
		return nil, refuse("cannot init from /: it is not on an LVM logical volume (device %d:%d); imgbase needs / on a thin LV", major, minor)
	case strings.HasPrefix(from, "/dev/"):
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(h.Root, from), &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK {
			if lv := t.ByDevice(int(unix.Major(st.Rdev)), int(unix.Minor(st.Rdev))); lv != nil {
				return lv, nil
			}
		}
		for i := range t.All {
			if t.All[i].Path == from {
				return &t.All[i], nil
			}
		}
		return nil, refuse("cannot init from %s: no such logical volume; see 'lvs'", from)
	default:
		vg, lv, ok := strings.Cut(from, "/")
		if ok {
			for i := range t.All {
				if t.All[i].VG == vg && t.All[i].Name == lv {
					return &t.All[i], nil
				}
			}
		}
		return nil, refuse("cannot init from %q: no such logical volume; give /, VG/LV or /dev/VG/LV", from)
	}
}

// RootDevice returns the device number of the filesystem at dir.
func RootDevice(dir string) func() (int, int, error) {
	return func() (int, int, error) {
		var st unix.Stat_t
		if err := unix.Stat(dir, &st); err != nil {
			return 0, 0, fmt.Errorf("cannot stat %s: %w", dir, err)
		}
		return int(unix.Major(st.Dev)), int(unix.Minor(st.Dev)), nil
	}
}

// RootFSType returns the filesystem type mounted at / per /proc/self/mounts.
func RootFSType() string {
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return ""
	}
	fstype := ""
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[1] == "/" {
			fstype = f[2] // the last mount on / is the visible one
		}
	}
	return fstype
}

// withInit returns the report as it reads after the init steps so far:
// the VG, pool and source LV tagged, and the new (sealed) base.
func withInit(all []lvm.LV, src *lvm.LV, name string) []lvm.LV {
	out := make([]lvm.LV, 0, len(all)+1)
	for _, lv := range all {
		if lv.VG == src.VG {
			lv.VGTags = append(append([]string(nil), lv.VGTags...), lvm.TagVG)
			switch lv.Name {
			case src.Pool:
				lv.Tags = append(append([]string(nil), lv.Tags...), lvm.TagPool)
			case src.Name:
				lv.Tags = append(append([]string(nil), lv.Tags...), lvm.TagInit)
			}
		}
		out = append(out, lv)
	}
	base := *src
	base.Name, base.Path, base.Origin = name, "", src.Name
	base.Attr = "Vri---tz-k"
	base.Major, base.Minor = -1, -1
	base.Tags = []string{lvm.TagBase}
	base.VGTags = append(append([]string(nil), src.VGTags...), lvm.TagVG)
	return append(out, base)
}
