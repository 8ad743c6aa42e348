package host

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/imgbase/imgbase/internal/image"
	"github.com/imgbase/imgbase/internal/image/preflight"
	"github.com/imgbase/imgbase/internal/image/verify"
	"github.com/imgbase/imgbase/internal/layout"
	"github.com/imgbase/imgbase/internal/lvm"
	"github.com/imgbase/imgbase/internal/migrate"
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
// and then removes bases beyond req.Keep. Until the boot entry is written
// any failure removes what was created; the running system is untouched.
func (h *Host) Update(ctx context.Context, req UpdateRequest) (*UpdateResult, error) {
	t, err := h.managed(ctx)
	if err != nil {
		return nil, err
	}
	oldBase, running, err := h.configSource(t)
	if err != nil {
		return nil, err
	}
	vres, err := h.verify(ctx, req.ImageRequest)
	if err != nil {
		return nil, err
	}
	im, err := h.openImage(ctx, req.Image)
	if err != nil {
		return nil, err
	}
	defer im.Close()
	warnUnverified(h, vres, req.Image)
	if req.Format != "" && string(im.Format) != req.Format {
		return nil, refuse("cannot update from %s: it is a %s image, not %s; drop --format or give the right file", req.Image, im.Format, req.Format)
	}
	if err := h.preflight(t, im, req); err != nil {
		return nil, err
	}
	res := &UpdateResult{Verified: vres, From: running}
	u := &undo{log: h.Log}
	if err := h.updateSteps(ctx, u, t, im, req, oldBase, res); err != nil {
		return nil, u.rollback(ctx, err)
	}
	removed, err := h.collect(ctx, req.Keep, res.Base.Base)
	res.Removed = removed
	if err != nil {
		return res, fmt.Errorf("the update to %s is complete, but removing old bases failed: %w", res.Layer, err)
	}
	return res, nil
}

func (h *Host) updateSteps(ctx context.Context, u *undo, t *layout.Tree, im *image.Image, req UpdateRequest, oldBase *layout.Base, res *UpdateResult) error {
	br, err := h.addBase(ctx, u, t, im, req.ImageRequest)
	if err != nil {
		return err
	}
	res.Base = *br
	// The tree as it is now, without another lvs call.
	all := append(append([]lvm.LV(nil), t.All...), lvm.LV{
		VG: t.VG, Name: br.Base, Attr: "Vri---tz-k", Size: br.Size, Pool: t.Pool.Name,
		Tags: []string{lvm.TagBase}, VGTags: t.Pool.VGTags, Major: -1, Minor: -1,
	})
	nt, err := layout.Build(all)
	if err != nil {
		return err
	}
	base := nt.Base(br.Base)
	if base == nil {
		return fmt.Errorf("cannot find the new base %s in the layout", br.Base)
	}
	name := base.NextLayerName()
	res.Layer = name
	_, err = h.createLayer(ctx, u, nt, base, base.Name(), name, layerSetup{
		try: true,
		fill: func(ctx context.Context, mnt string) error {
			rep, err := h.carryConfig(ctx, t, oldBase, mnt)
			res.Migration = rep
			return err
		},
	})
	return err
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

// carryConfig merges the admin's /etc from the running root into the new
// layer mounted at mnt, against the old base mounted read-only.
func (h *Host) carryConfig(ctx context.Context, t *layout.Tree, oldBase *layout.Base, mnt string) (*migrate.Report, error) {
	if h.dry() {
		fmt.Fprintf(h.Out, "# carry /etc from %s (against base %s) into %s\n", h.Root, oldBase.Name(), mnt)
		return nil, nil
	}
	oldMnt := h.mountPoint(oldBase.Name())
	if err := h.mkdir(oldMnt); err != nil {
		return nil, err
	}
	if err := h.lvm().Activate(ctx, t.VG, oldBase.Name()); err != nil {
		return nil, err
	}
	defer h.lvm().Deactivate(context.WithoutCancel(ctx), t.VG, oldBase.Name())
	fstype, err := h.fs().Type(ctx, oldBase.LV.DevPath())
	if err != nil {
		return nil, err
	}
	// The base is read-only: its journal must not be replayed.
	opts := []string{"ro", "noload"}
	if fstype == "xfs" {
		opts = []string{"ro", "norecovery", "nouuid"}
	}
	if err := h.fs().Mount(ctx, oldBase.LV.DevPath(), oldMnt, fstype, opts...); err != nil {
		return nil, err
	}
	defer h.fs().Unmount(context.WithoutCancel(ctx), oldMnt)
	rep, err := migrate.Etc(ctx, migrate.Roots{OldBase: oldMnt, Running: h.Root, New: mnt}, h.Log)
	if err != nil {
		return rep, err
	}
	if err := rep.Save(filepath.Join(mnt, ReportDir)); err != nil {
		return rep, err
	}
	return rep, nil
}

// preflight refuses an update that would not fit, before anything is made.
func (h *Host) preflight(t *layout.Tree, im *image.Image, req UpdateRequest) error {
	lvSize := int64(req.Size)
	if lvSize == 0 {
		lvSize = im.Size
	}
	chunk := int64(t.Pool.ChunkSize)
	if chunk <= 0 {
		chunk = defaultChunk
	}
	pool := preflight.Pool{
		Name: t.Pool.FullName(), Size: int64(t.Pool.Size), MetadataSize: int64(t.Pool.MetadataSize),
		DataPercent: t.Pool.DataPercent, MetadataPercent: t.Pool.MetaPercent, Chunk: chunk,
	}
	plan := preflight.Plan{FSSize: im.Size, LVSize: lvSize, ImageData: imageData(im), LayerData: 64 << 20, NewLVs: 2}
	var removable []preflight.Removable
	for _, b := range t.Bases {
		removable = append(removable, preflight.Removable{Name: b.Name(), PoolBytes: int64(b.LV.DataUsed())})
	}
	err := preflight.Check(pool, preflight.Boot{Free: 1 << 62}, plan, removable)
	if errors.Is(err, preflight.ErrNoSpace) || errors.Is(err, preflight.ErrImageTooLarge) {
		return refuse("%v", err)
	}
	return err
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

// collect removes the oldest bases beyond keep, never the running one,
// the new one, or a pinned one.
func (h *Host) collect(ctx context.Context, keep int, newBase string) ([]string, error) {
	if keep <= 0 || h.dry() {
		return nil, nil
	}
	t, err := h.managed(ctx)
	if err != nil {
		return nil, err
	}
	cur := h.CurrentLayer(t)
	excess := len(t.Bases) - keep
	var removed []string
	for _, b := range t.Bases {
		if excess <= 0 {
			break
		}
		if b.Name() == newBase || (cur != nil && cur.Base == b) || b.LV.HasTag(lvm.TagPinned) {
			continue
		}
		if err := h.RemoveBase(ctx, b.Name()); err != nil {
			var r *ErrRefused
			if errors.As(err, &r) {
				h.Log.Info("keeping old base", "base", b.Name(), "why", r.Reason)
				continue
			}
			return removed, err
		}
		removed = append(removed, b.Name())
		excess--
	}
	return removed, nil
}
