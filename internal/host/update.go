package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/imgbase/imgbase/internal/boot"
	"github.com/imgbase/imgbase/internal/filesystem"
	"github.com/imgbase/imgbase/internal/image"
	"github.com/imgbase/imgbase/internal/image/preflight"
	"github.com/imgbase/imgbase/internal/image/verify"
	"github.com/imgbase/imgbase/internal/journal"
	"github.com/imgbase/imgbase/internal/layout"
	"github.com/imgbase/imgbase/internal/lvm"
	"github.com/imgbase/imgbase/internal/migrate"
	"github.com/imgbase/imgbase/internal/nvr"
	"github.com/imgbase/imgbase/internal/volume"
)

// ReportDir is where the report of carried configuration is kept, inside
// the new layer.
const ReportDir = "var/lib/imgbase"

// UpdateRequest asks for a new base from an image, with its first layer.
type UpdateRequest struct {
	ImageRequest
	// Format, when set ("raw" or "liveimg"), must match the image.
	Format string
	// Keep is how many bases garbage collection keeps (images_to_keep).
	Keep int
}

// UpdateResult says what Update did.
type UpdateResult struct {
	Base      BaseResult      `json:"base"`
	Layer     string          `json:"layer"`
	From      string          `json:"from"`
	Verified  verify.Result   `json:"verified"`
	Migration *migrate.Report `json:"migration,omitempty"`
	Removed   []string        `json:"removed,omitempty"`
}

// Update installs an image as a new base with a first layer that carries
// the running layer's configuration, gives it a boot entry in try mode,
// and then removes bases beyond req.Keep. It is one journaled transaction:
// a failure or a crash before the commit (the layer fully prepared) leaves
// the host as it was, after it the boot entry and the removals are
// finished by 'imgbase recover'.
func (h *Host) Update(ctx context.Context, req UpdateRequest) (*UpdateResult, error) {
	t, err := h.Creating(ctx)
	if err != nil {
		return nil, err
	}
	if err := h.bootReady(); err != nil {
		return nil, err
	}
	oldBase, running, err := h.configSource(t)
	if err != nil {
		return nil, err
	}
	v, vres, err := h.verifier(ctx, req.ImageRequest)
	if err != nil {
		return nil, err
	}
	if v != nil {
		defer v.Abort()
	}
	im, err := h.openImage(ctx, req.Image)
	if err != nil {
		return nil, err
	}
	defer im.Close()
	if v == nil {
		warnUnverified(h, vres, req.Image)
	}
	if req.Format != "" && string(im.Format) != req.Format {
		return nil, refuse("cannot update from %s: it is a %s image, not %s; drop --format or give the right file", req.Image, im.Format, req.Format)
	}
	plan, err := h.planBase(ctx, t, im, req.ImageRequest)
	if err != nil {
		return nil, err
	}
	grow, err := h.preflight(t, im, req)
	if err != nil {
		return nil, err
	}
	if h.Dry() {
		if err := h.checkImage(ctx, im); err != nil {
			return nil, err
		}
	}
	way, err := h.planDelta(ctx, t, im, req.ImageRequest, plan, oldBase)
	if err != nil {
		return nil, err
	}
	defer plan.delta.close()
	if err := h.preHook(ctx, hookUpdate, plan.name, req.Image); err != nil {
		return nil, err
	}
	if err := grow(ctx); err != nil {
		return nil, err
	}
	res := &UpdateResult{Verified: vres, From: running, Base: BaseResult{Base: plan.name, Size: plan.size, FSType: string(im.FSType), Way: way}}
	res.Layer = nvr.LayerName(plan.nvr, 1)
	tx := h.updateTx(t, im, req, plan, oldBase, res, v)
	if err := h.journal().Run(ctx, tx); err != nil {
		return nil, err
	}
	h.postHook(ctx, hookUpdate, plan.name, res.Layer)
	return res, nil
}

// updateTx lays out the update as journal steps. Steps before the commit
// build the new base and layer, which nothing uses yet; only after it does
// the boot loader learn of the layer.
//
// Work that waits on different devices overlaps: the old base is mounted
// for the merge while the image is written, and the new base is sealed
// while its layer is prepared (the layer is a snapshot of the base still
// writable: nothing writes to it in between).
func (h *Host) updateTx(t *layout.Tree, im *image.Image, req UpdateRequest, plan *basePlan, oldBase *layout.Base, res *UpdateResult, v *verify.Verifier) journal.Tx {
	vg, base, layer := t.VG, plan.name, res.Layer
	mnt := h.MountPoint(layer)
	src := source{vg: vg, base: oldBase, mnt: h.MountPoint(oldBase.Name())}
	tx := journal.Tx{Name: "update to " + base}
	tx.Steps = []journal.Step{
		{Kind: stepCreateBase, Args: journal.Args{"vg": vg, "pool": t.Pool.Name, "lv": base, "size": strconv.FormatUint(plan.size, 10)}},
		{Kind: stepWriteImage, Args: src.args(journal.Args{"vg": vg, "lv": base, "image": im.Path}), Do: func(ctx context.Context) error {
			write := func(ctx context.Context) error {
				if h.Dry() {
					fmt.Fprintf(h.Out, "# write %s (%d bytes, sparse) to /dev/%s/%s\n", im.Path, im.Size, vg, base)
					return nil
				}
				st, vres, err := h.writeChecked(ctx, "/dev/"+vg+"/"+base, im, plan.chunk, req.Progress, v)
				res.Base.Written, res.Base.PoolBytes = st.Written, st.DataBytes(plan.chunk)
				if err != nil {
					return err
				}
				if v != nil {
					res.Verified = vres
				}
				// Every later layer of the base gets its UUID cheaply.
				return h.FS().SeedChecksums(ctx, "/dev/"+vg+"/"+base)
			}
			return h.both(ctx, write, func(ctx context.Context) error { return h.mountSource(ctx, src) })
		}},
		{Kind: stepCreateLayer, Args: journal.Args{"vg": vg, "lv": layer, "origin": base, "mnt": mnt}},
		{Kind: stepPrepareLayer, Args: src.args(journal.Args{"vg": vg, "lv": layer, "mnt": mnt}), Do: func(ctx context.Context) error {
			seal := func(ctx context.Context) error { return h.LVM().Seal(ctx, vg, base) }
			prepare := func(ctx context.Context) error {
				nt := withBase(t, base, plan.size)
				return h.prepareNewLayer(ctx, nt, nt.Base(base), layer, func(ctx context.Context, mnt string) error {
					rep, err := h.mergeSource(ctx, t, src, mnt)
					res.Migration = rep
					return err
				})
			}
			return h.both(ctx, seal, prepare)
		}},
	}
	if plan.delta != nil {
		tx.Steps = append(h.deltaSteps(vg, im, plan, src, res), tx.Steps[2:]...)
	}
	tx.AfterCommit = []journal.Step{
		{Kind: stepBootEntry, Args: journal.Args{"vg": vg, "lv": layer, "base": base, "mnt": mnt, "try": "y"}},
	}
	res.Removed = h.collectable(t, req.Keep, base)
	tx.AfterCommit = append(tx.AfterCommit, h.collectSteps(t, res.Removed)...)
	return tx
}

// both runs a and b at the same time and returns their errors. Neither is
// cancelled when the other fails: an LVM command is never killed half-way.
// A dry run runs them in turn, so that its output reads in order.
func (h *Host) both(ctx context.Context, a, b func(context.Context) error) error {
	if h.Dry() {
		return errors.Join(a(ctx), b(ctx))
	}
	errB := make(chan error, 1)
	go func() { errB <- b(ctx) }()
	errA := a(ctx)
	return errors.Join(errA, <-errB)
}

// withBase is t with a new sealed base, without another lvs call.
func withBase(t *layout.Tree, name string, size uint64) *layout.Tree {
	all := append(append([]lvm.LV(nil), t.All...), lvm.LV{
		VG: t.VG, Name: name, Attr: "Vri---tz-k", Size: size, Pool: t.Pool.Name,
		Tags: []string{lvm.TagBase}, VGTags: t.Pool.VGTags, Major: -1, Minor: -1,
	})
	nt, err := layout.Build(all)
	if err != nil {
		// t was built from the same LVs: adding a base cannot make it unreadable.
		panic(err)
	}
	return nt
}

// configSource finds the base the running system came from, so that the
// admin's changes can be told from the image's. A host still running on
// the LV it was installed on counts as running on its first base.
func (h *Host) configSource(t *layout.Tree) (*layout.Base, string, error) {
	if cur := h.CurrentLayer(t); cur != nil {
		return cur.Base, cur.Name(), nil
	}
	if h.RootDevice != nil && t.Init != nil {
		if major, minor, err := h.RootDevice(); err == nil && t.Init.Major == major && t.Init.Minor == minor {
			for _, b := range t.Bases {
				if b.LV.Origin == t.Init.Name {
					return b, t.Init.Name, nil
				}
			}
		}
	}
	return nil, "", refuse("cannot update: the running system is not on a layer, so there is no configuration to carry; boot a layer first (see 'imgbase layout')")
}

// source is the base the running layer came from, mounted read-only
// during an update so that the admin's changes can be told from the
// image's.
type source struct {
	vg   string
	base *layout.Base
	mnt  string
}

// args adds what releaseSource needs to a journal step's Args.
func (s source) args(a journal.Args) journal.Args {
	a["source"], a["srcmnt"] = s.base.Name(), s.mnt
	return a
}

// mountSource activates the source base and mounts it read-only.
func (h *Host) mountSource(ctx context.Context, s source) error {
	if h.Dry() {
		fmt.Fprintf(h.Out, "# mount base %s read-only at %s\n", s.base.Name(), s.mnt)
		return nil
	}
	if err := h.Mkdir(s.mnt); err != nil {
		return err
	}
	if err := h.LVM().Activate(ctx, s.vg, s.base.Name()); err != nil {
		return err
	}
	dev := s.base.LV.DevPath()
	fstype, err := h.FS().Type(ctx, dev)
	if err != nil {
		return err
	}
	// The base is read-only: its journal must not be replayed.
	opts := []string{"ro", "noload"}
	if fstype == "xfs" {
		opts = []string{"ro", "norecovery", "nouuid"}
	}
	return h.FS().WorkMount(ctx, dev, s.mnt, fstype, opts...)
}

// releaseSource unmounts and deactivates the source base named in a
// journal step's Args, whatever mountSource got done. Args without a
// source (a journal written before sources were recorded) need nothing.
func (h *Host) releaseSource(ctx context.Context, a journal.Args) error {
	if a["source"] == "" || h.Dry() {
		return nil
	}
	if err := h.unmountIfMounted(ctx, a["srcmnt"]); err != nil {
		return err
	}
	return h.LVM().Deactivate(ctx, a["vg"], a["source"])
}

// mergeSource merges the running /etc into the new layer at mnt against
// the mounted source, then lets the source go.
func (h *Host) mergeSource(ctx context.Context, t *layout.Tree, s source, mnt string) (*migrate.Report, error) {
	if h.Dry() {
		fmt.Fprintf(h.Out, "# carry /etc from %s (against base %s) into %s\n", h.Root, s.base.Name(), mnt)
		return nil, nil
	}
	rep, err := h.mergeEtc(ctx, t, s.mnt, mnt)
	rerr := h.releaseSource(context.WithoutCancel(ctx), s.args(journal.Args{"vg": s.vg}))
	return rep, errors.Join(err, rerr)
}

func (h *Host) mergeEtc(ctx context.Context, t *layout.Tree, oldMnt, mnt string) (*migrate.Report, error) {
	roots := migrate.Roots{OldBase: oldMnt, Running: h.Root, New: mnt, Snapshot: true,
		FstabOwned: h.fstabOwned(t)}
	if h.Boot != nil {
		// Installed into the layer afresh.
		roots.Owned = append(boot.UnitPaths(), boot.KernelCmdlinePath)
	}
	rep, err := migrate.Etc(ctx, roots, h.Log)
	if err != nil {
		return rep, err
	}
	if err := rep.Save(filepath.Join(mnt, ReportDir)); err != nil {
		return rep, err
	}
	return rep, nil
}

// fstabOwned says which fstab lines (as fields) editLayer writes into every
// layer from the running fstab: the volumes' and the host-wide ones.
func (h *Host) fstabOwned(t *layout.Tree) func([]string) bool {
	volumes := map[string]bool{}
	if running, err := os.ReadFile(h.Path("etc/fstab")); err == nil {
		for _, e := range volume.Entries(running, t) {
			volumes[e.Path] = true
		}
	}
	return func(f []string) bool {
		return filesystem.IsHostWide(f) || (len(f) >= 2 && volumes[strings.TrimSuffix(f[1], "/")])
	}
}

// preflight refuses an update that would not fit, before anything is made.
// The function it returns grows the pool when the update fits only by
// counting what lvm.conf's autoextend policy lets the pool take.
func (h *Host) preflight(t *layout.Tree, im *image.Image, req UpdateRequest) (func(context.Context) error, error) {
	lvSize := int64(req.Size)
	if lvSize == 0 {
		lvSize = im.Size
	}
	pool := h.Pool(t)
	plan := preflight.Plan{FSSize: im.Size, LVSize: lvSize, ImageData: imageData(im), LayerData: 64 << 20, NewLVs: 2}
	// What the admin could remove, oldest first: never a base in use,
	// which 'imgbase base --remove' would refuse.
	var removable []preflight.Removable
	inUse := h.inUse(t)
	for _, b := range t.Bases {
		if inUse(b) {
			continue
		}
		removable = append(removable, preflight.Removable{Name: b.Name(), PoolBytes: int64(b.LV.DataUsed()), BootBytes: h.bootBytes(b)})
	}
	boot := h.bootSpace(t)
	err := preflight.Check(pool, boot, plan, removable)
	if errors.Is(err, preflight.ErrNoSpace) || errors.Is(err, preflight.ErrImageTooLarge) {
		return nil, refuse("%v", err)
	}
	if err != nil {
		return nil, err
	}
	// It fits counting lvm.conf's autoextend: the pool is grown before the
	// write, as dmeventd would, rather than racing dmeventd with it.
	grow := func(ctx context.Context) error {
		data, meta := preflight.Growth(pool, boot, plan)
		if data == 0 && meta == 0 {
			return nil
		}
		h.Log.Info("growing the thin pool within lvm.conf's autoextend policy", "pool", pool.Name, "data", data, "metadata", meta)
		return h.LVM().ExtendPool(ctx, t.VG, t.Pool.Name, data, meta)
	}
	return grow, nil
}

// imageData estimates the pool space an image takes from the blocks its
// file occupies (holes hold nothing), at most its filesystem size.
func imageData(im *image.Image) int64 {
	need := im.Size
	if n := allocated(im.FSPath()); n > 0 && n < need {
		need = n
	}
	return need
}

// collectable returns the oldest bases beyond keep that garbage
// collection removes: never the running one, the new one, a pinned one, or
// one whose layer boots by default.
func (h *Host) collectable(t *layout.Tree, keep int, newBase string) []string {
	if keep <= 0 {
		return nil
	}
	inUse := h.inUse(t)
	excess := len(t.Bases) + 1 - keep // the new base counts
	var out []string
	for _, b := range t.Bases {
		if excess <= 0 {
			break
		}
		if b.Name() == newBase || b.LV.HasTag(lvm.TagPinned) || inUse(b) {
			continue
		}
		out = append(out, b.Name())
		excess--
	}
	return out
}

// inUse tells the bases that cannot go: the running layer's, and the one
// whose layer boots by default.
func (h *Host) inUse(t *layout.Tree) func(*layout.Base) bool {
	cur := h.CurrentLayer(t)
	def := ""
	if h.Boot != nil {
		def, _ = h.Boot.Default()
	}
	return func(b *layout.Base) bool { return (cur != nil && cur.Base == b) || hasLayer(b, def) }
}

func hasLayer(b *layout.Base, name string) bool {
	for _, l := range b.Layers {
		if l.Name() == name {
			return true
		}
	}
	return false
}
