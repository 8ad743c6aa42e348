package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"

	"github.com/imgbase/imgbase/internal/atomicfile"
	"github.com/imgbase/imgbase/internal/blobcache"
	"github.com/imgbase/imgbase/internal/command"
	"github.com/imgbase/imgbase/internal/journal"
	"github.com/imgbase/imgbase/internal/layout"
	"github.com/imgbase/imgbase/internal/lvm"
	"github.com/imgbase/imgbase/internal/nvr"
	"github.com/imgbase/imgbase/internal/origin"
	"github.com/imgbase/imgbase/internal/pull"
	"github.com/imgbase/imgbase/internal/registry"
)

// stepExtractImage fills a new base from an OCI image: mkfs, the layers
// streamed in, fsck. Its undo unmounts what it may have left mounted, so
// that the base's removal (create-base's undo) can follow.
const stepExtractImage = "extract-image"

// TrackFile is the configuration 'imgbase switch' writes: the image that
// 'imgbase update' follows. It lives in /etc, which every update carries
// into the new layer.
const TrackFile = "etc/imgbased.conf.d/50-image.conf"

// OCIUpdateRequest asks for an update from an OCI image.
type OCIUpdateRequest struct {
	OCIRequest
	// Keep is how many bases garbage collection keeps (images_to_keep).
	Keep int
	// Track makes the image the one 'imgbase update' follows, in the new
	// layer and in the running one.
	Track bool
	// SkipInstalled makes an image already installed as a base a success
	// that changes nothing (the timer's case) instead of a refusal.
	SkipInstalled bool
}

// OCIUpdateResult says what UpdateFromOCI did.
type OCIUpdateResult struct {
	UpdateResult
	Ref        string `json:"ref"`
	Digest     string `json:"digest"`
	Downloaded int64  `json:"downloaded"`
	FromCache  int64  `json:"from_cache"`
	// Installed, when set, is the base that already holds the image:
	// nothing was done.
	Installed string `json:"installed,omitempty"`
}

// UpdateFromOCI is Update for an OCI image: the same journaled
// transaction (new base, first layer with /etc carried from the running
// layer, boot entry on trial, garbage collection), the base built by
// extracting the image's layers instead of writing a filesystem image.
func (h *Host) UpdateFromOCI(ctx context.Context, req OCIUpdateRequest) (*OCIUpdateResult, error) {
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
	img, err := h.resolveOCI(ctx, req.OCIRequest)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	res := &OCIUpdateResult{Ref: req.Ref.String(), Digest: img.Digest}
	if b := baseWithDigest(t, img.Digest); b != "" {
		if req.SkipInstalled {
			res.Installed = b
			return res, nil
		}
		return nil, refuse("cannot update from %s: its image %s is installed already as base %s", req.Ref, img.Digest, b)
	}
	name := req.NVR
	if name == "" {
		n, err := pull.NVR(img, "")
		if err != nil {
			return nil, refuse("%v", err)
		}
		name = n.String()
	}
	if err := checkNewBase(t, name); err != nil {
		return nil, err
	}
	size := req.Size
	if size == 0 {
		// An image does not say how large it is unpacked: the running
		// base's size is the best guess of the next one's.
		size = oldBase.LV.Size
	}
	if free := t.Pool.DataFree(); uint64(img.Size()) > free {
		return nil, refuse("cannot update to %s from %s: %v in pool %s: its layers alone are %dM, %dM free",
			name, req.Ref, ErrNoSpace, t.Pool.Name, img.Size()>>20, free>>20)
	}
	fstype := req.FSType
	if fstype == "" {
		fstype = "ext4"
	}
	if fstype != "ext4" && fstype != "xfs" {
		return nil, refuse("cannot update to %s: filesystem %q is not supported (use ext4 or xfs)", name, fstype)
	}
	if err := h.preHook(ctx, hookUpdate, name, req.Ref.String()); err != nil {
		return nil, err
	}
	n, _ := nvr.Parse(name)
	res.From = running
	res.Base = BaseResult{Base: name, Size: size, FSType: fstype}
	res.Layer = nvr.LayerName(n, 1)
	tx := h.ociUpdateTx(t, img, req, oldBase, res)
	if err := h.journal().Run(ctx, tx); err != nil {
		return nil, err
	}
	if req.Track && !h.Dry() {
		if err := writeTrack(h.Root, req.Ref.String()); err != nil {
			// The new layer tracks it already; only the running one
			// lags until the reboot.
			h.Log.Warn("the running system does not track the new image yet", "err", err)
		}
	}
	if req.Cache != nil && !h.Dry() {
		cleanCache(h.Log, req.Cache, img)
	}
	h.postHook(ctx, hookUpdate, name, res.Layer)
	return res, nil
}

// cleanCache is the blob cache's part of garbage collection: once an
// update is committed, only the blobs of the image it installed are kept.
// The next pull of a moved tag shares layers with that image, not with
// the ones before it; an older image installed again is downloaded again.
// A cache that cannot be cleaned costs disk space, not the update.
func cleanCache(log *slog.Logger, c *blobcache.Cache, img *registry.Image) {
	keep := map[string]bool{img.ConfigDigest: true}
	for _, l := range img.Layers {
		keep[l.Digest] = true
	}
	n, freed, err := c.Clean(keep)
	if err != nil {
		log.Warn("the blob cache keeps blobs of older images", "err", err)
		return
	}
	if n > 0 {
		log.Info("blob cache cleaned", "blobs", n, "bytes", freed, "kept", len(keep))
	}
}

// ociUpdateTx is updateTx with the base extracted from img.
func (h *Host) ociUpdateTx(t *layout.Tree, img *registry.Image, req OCIUpdateRequest, oldBase *layout.Base, res *OCIUpdateResult) journal.Tx {
	vg, base, layer, size, fstype := t.VG, res.Base.Base, res.Layer, res.Base.Size, res.Base.FSType
	mnt := h.MountPoint(layer)
	src := source{vg: vg, base: oldBase, mnt: h.MountPoint(oldBase.Name())}
	tags := append([]string{lvm.TagBase}, origin.Tags(origin.Origin{Ref: req.Ref.String(), Digest: img.Digest})...)
	create := journal.Args{"vg": vg, "pool": t.Pool.Name, "lv": base, "size": strconv.FormatUint(size, 10)}
	tx := journal.Tx{Name: "update to " + base + " from " + req.Ref.String()}
	tx.Steps = []journal.Step{
		{Kind: stepCreateBase, Args: create, Do: func(ctx context.Context) error {
			return h.LVM().CreateThin(ctx, vg, t.Pool.Name, base, size, tags)
		}},
		{Kind: stepExtractImage, Args: src.args(journal.Args{"vg": vg, "lv": base, "mnt": h.MountPoint(base), "image": req.Ref.String()}), Do: func(ctx context.Context) error {
			extract := func(ctx context.Context) error {
				var or OCIResult
				err := h.fillOCIBase(ctx, "/dev/"+vg+"/"+base, h.MountPoint(base), fstype, img, req.OCIRequest, &or)
				res.Downloaded, res.FromCache, res.Base.Written = or.Downloaded, or.FromCache, or.Written
				return err
			}
			return h.both(ctx, extract, func(ctx context.Context) error { return h.mountSource(ctx, src) })
		}},
		{Kind: stepCreateLayer, Args: journal.Args{"vg": vg, "lv": layer, "origin": base, "mnt": mnt}},
		{Kind: stepPrepareLayer, Args: src.args(journal.Args{"vg": vg, "lv": layer, "mnt": mnt}), Do: func(ctx context.Context) error {
			seal := func(ctx context.Context) error { return h.LVM().Seal(ctx, vg, base) }
			prepare := func(ctx context.Context) error {
				nt := withBase(t, base, size)
				return h.prepareNewLayer(ctx, nt, nt.Base(base), layer, func(ctx context.Context, mnt string) error {
					rep, err := h.mergeSource(ctx, t, src, mnt)
					res.Migration = rep
					if err == nil && req.Track && !h.Dry() {
						err = writeTrack(mnt, req.Ref.String())
					}
					return err
				})
			}
			return h.both(ctx, seal, prepare)
		}},
	}
	tx.AfterCommit = []journal.Step{
		{Kind: stepBootEntry, Args: journal.Args{"vg": vg, "lv": layer, "base": base, "mnt": mnt, "try": "y"}},
	}
	res.Removed = h.collectable(t, req.Keep, base)
	tx.AfterCommit = append(tx.AfterCommit, h.collectSteps(t, res.Removed)...)
	return tx
}

// undoExtract lets go of what an interrupted extract-image step held: the
// new base's mount and the old base mounted for the merge.
func (h *Host) undoExtract(ctx context.Context, a journal.Args) error {
	return errors.Join(h.unmountIfMounted(ctx, a["mnt"]), h.releaseSource(ctx, a))
}

// writeTrack makes ref the image that 'imgbase update' follows on the
// system rooted at root.
func writeTrack(root, ref string) error {
	data := fmt.Sprintf("# Written by 'imgbase switch': the image 'imgbase update' follows.\n[update]\nimage = %s\n", ref)
	p := filepath.Join(root, TrackFile)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("cannot track %s: %w", ref, err)
	}
	if err := atomicfile.Write(p, []byte(data), 0o644); err != nil {
		return fmt.Errorf("cannot track %s: %w", ref, err)
	}
	return nil
}

// baseWithDigest names the base built from the image with manifest
// digest d, "" when there is none.
func baseWithDigest(t *layout.Tree, d string) string {
	for _, b := range t.Bases {
		if o, ok := origin.FromTags(b.LV.Tags); ok && o.Digest == d {
			return b.Name()
		}
	}
	return ""
}

// CheckResult says whether a tracked image moved.
type CheckResult struct {
	Ref    string `json:"ref"`
	Digest string `json:"digest"`
	// Available is true when no base holds the image yet.
	Available bool `json:"available"`
	// Installed is the base holding the image, when one does.
	Installed string `json:"installed,omitempty"`
	// NVR is the base an update would install.
	NVR string `json:"nvr,omitempty"`
	// Running is the base the running layer came from, with its source.
	Running       string `json:"running,omitempty"`
	RunningDigest string `json:"running_digest,omitempty"`
}

// CheckOCI resolves req.Ref and says whether installing it would bring a
// new base, changing nothing.
func (h *Host) CheckOCI(ctx context.Context, req OCIRequest) (*CheckResult, error) {
	t, err := h.Managed(ctx)
	if err != nil {
		return nil, err
	}
	img, err := h.resolveOCI(ctx, req)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	res := &CheckResult{Ref: req.Ref.String(), Digest: img.Digest}
	if cur := h.CurrentLayer(t); cur != nil {
		res.Running = cur.Base.Name()
		if o, ok := origin.FromTags(cur.Base.LV.Tags); ok {
			res.RunningDigest = o.Digest
		}
	}
	res.Installed = baseWithDigest(t, img.Digest)
	res.Available = res.Installed == ""
	if n, err := pull.NVR(img, ""); err == nil {
		res.NVR = n.String()
	} else if res.Available {
		return nil, refuse("%v", err)
	}
	return res, nil
}

// RunningOrigin is the image the running layer's base was built from, if
// it was built from one.
func (h *Host) RunningOrigin(ctx context.Context) (origin.Origin, bool, error) {
	t, err := h.Managed(ctx)
	if err != nil {
		return origin.Origin{}, false, err
	}
	cur := h.CurrentLayer(t)
	if cur == nil {
		return origin.Origin{}, false, nil
	}
	o, ok := origin.FromTags(cur.Base.LV.Tags)
	return o, ok && o.Ref != "", nil
}

// Reboot reboots into the staged layer unless another program holds a
// blocking inhibitor: systemctl honours inhibitors for interactive callers
// only, unless told to, and a timer's service is not interactive.
func (h *Host) Reboot(ctx context.Context) error {
	if _, err := h.Run.Run(ctx, command.Change("systemctl", "reboot", "--check-inhibitors=yes")); err != nil {
		return fmt.Errorf("cannot reboot: %w", err)
	}
	return nil
}
