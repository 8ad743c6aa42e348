package host

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/imgbase/imgbase/internal/filesystem"
	"github.com/imgbase/imgbase/internal/image"
	"github.com/imgbase/imgbase/internal/journal"
	"github.com/imgbase/imgbase/internal/layout"
	"github.com/imgbase/imgbase/internal/lvm"
	"github.com/imgbase/imgbase/internal/manifest"
	"github.com/imgbase/imgbase/internal/treesync"
	"github.com/imgbase/imgbase/internal/undo"
)

// The delta path: a new base is a thin snapshot of its predecessor whose
// tree is made identical to the image's, so that it shares every block of
// what did not change. The full write stays the way when there is no
// predecessor, the filesystem types differ, --full is given, or the delta
// would write more than a full copy.
//
// The full path computes no manifest: it would hash the whole image, which
// costs about a minute per GiB on a slow CPU, for every update. A base
// written from an image that carries its own record (made by 'imgbase
// manifest --record' as the image's build ends) holds that record, copied
// with the image's blocks. The delta path records the image's manifest. To
// describe both trees it reads no file whose hash a record supplies: each
// tree is walked without reading contents, and its record, when it has one
// that the walk does not contradict (manifest.HashesFrom), gives the
// hashes. A tree without a usable record is compared byte for byte with
// the other (manifest.Like): an equal file takes the other's hash, only a
// differing one is hashed.

// Why a full write was taken.
const (
	WhyNoPredecessor = "no predecessor"
	WhyFSDiffers     = "filesystem types differ"
	WhyFull          = "--full"
	WhyLarger        = "the delta would write more than a full copy"
)

// Journal step kinds of the delta path. The snapshot's undo removes it;
// the sync's unmounts what it mounted. The predecessor is only ever
// mounted read-only without journal replay, so a crash anywhere leaves it
// as it was.
const (
	stepCreateBaseSnapshot = "create-base-snapshot"
	stepSyncTree           = "sync-tree"
)

// Way says how a new base got its tree.
type Way struct {
	Delta bool   `json:"delta"`
	From  string `json:"from,omitempty"` // the predecessor, for a delta
	Why   string `json:"why,omitempty"`  // why a full write, for one
	// Sync is what the delta did (nil in a dry run or a full write).
	Sync *treesync.Report `json:"sync,omitempty"`
	// Hashes says where the delta's file hashes came from: RecordsBoth,
	// RecordImage, RecordPredecessor or RecordNone.
	Hashes string `json:"hashes,omitempty"`
}

// Where a delta's hashes came from: the records of the image and of the
// predecessor, or reading the files of a tree whose record is missing or
// stale.
const (
	RecordsBoth       = "both trees' records"
	RecordImage       = "the image's record"
	RecordPredecessor = "the predecessor's record"
	RecordNone        = "reading both trees"
)

func (w Way) String() string {
	if !w.Delta {
		return "full write: " + w.Why
	}
	if w.Sync == nil {
		return "delta from " + w.From
	}
	s := w.Sync
	out := fmt.Sprintf("delta from %s: %s entries unchanged, %s rewritten, %s metadata-only, %s added, %s removed, %s written",
		w.From, thousands(s.Unchanged), thousands(s.Rewritten), thousands(s.MetadataOnly), thousands(s.Added), thousands(s.Removed), mib(s.BytesWritten))
	if w.Hashes != "" {
		out += "; hashes from " + w.Hashes
	}
	return out
}

func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// deltaPlan is what the delta path needs once it is chosen: the image's
// filesystem mounted read-only and both trees' manifests.
type deltaPlan struct {
	from     *layout.Base
	fstype   string
	tree     string // the image's filesystem, mounted read-only
	src, dst *manifest.Manifest
	release  func(context.Context) error
}

// close unmounts the image's filesystem; nil-safe, and a no-op once done.
func (d *deltaPlan) close() error {
	if d == nil || d.release == nil {
		return nil
	}
	err := d.release(context.Background())
	d.release = nil
	return err
}

// excluded is what neither the manifests nor the sync look at: the
// record of the manifest kept in the tree.
var excluded = []string{manifest.RecordDir}

// fullWhy decides from what is known without reading a tree whether the
// delta path is out, and why; "" means it is worth trying.
func fullWhy(full bool, from *layout.Base, fromFS string, imFS image.FSType) string {
	switch {
	case full:
		return WhyFull
	case from == nil:
		return WhyNoPredecessor
	case !sameFS(fromFS, string(imFS)):
		return WhyFSDiffers
	}
	return ""
}

func sameFS(a, b string) bool {
	return a == b || (filesystem.IsExt(a) && filesystem.IsExt(b))
}

// planDelta chooses between the delta and the full write for a new base
// from im, setting plan.delta for a delta. running is the predecessor
// unless req.FromBase names another.
func (h *Host) planDelta(ctx context.Context, t *layout.Tree, im *image.Image, req ImageRequest, plan *basePlan, running *layout.Base) (Way, error) {
	from := running
	if req.FromBase != "" {
		if from = t.Base(req.FromBase); from == nil {
			return Way{}, refuse("cannot use base %q as the predecessor: no such base; see 'imgbase layout --bases'", req.FromBase)
		}
	}
	if why := fullWhy(req.Full, from, string(im.FSType), im.FSType); why != "" {
		return Way{Why: why}, nil
	}
	if h.Dry() {
		// A dry run activates nothing, so it cannot read the predecessor;
		// it shows the delta that a real run tries first.
		plan.delta = &deltaPlan{from: from, fstype: string(im.FSType)}
		fmt.Fprintf(h.Out, "# delta from %s unless it would write more than a full copy of %s\n", from.Name(), im.Path)
		return Way{Delta: true, From: from.Name()}, nil
	}
	var d *deltaPlan
	var fstype, hashes string
	err := h.withBaseMounted(ctx, t.VG, from, func(mnt, fst string) error {
		fstype = fst
		if !sameFS(fst, string(im.FSType)) {
			return nil // no delta: neither tree is needed
		}
		var err error
		if d, err = h.mountImageTree(ctx, im, from, fst); err != nil {
			return err
		}
		hashes, err = h.describeTrees(ctx, d, from, mnt)
		return err
	})
	if err != nil {
		d.close()
		return Way{}, err
	}
	if why := fullWhy(false, from, fstype, im.FSType); why != "" {
		return Way{Why: why}, nil
	}
	est := treesync.EstimateSync(d.src, d.dst)
	h.Log.Info("delta estimate", "from", from.Name(), "write", est.BytesWritten, "full", est.FullBytes,
		"unchanged", est.Unchanged, "rewritten", est.Rewritten, "added", est.Added, "removed", est.Removed)
	if !est.Delta() {
		d.close()
		return Way{Why: WhyLarger}, nil
	}
	plan.delta = d
	return Way{Delta: true, From: from.Name(), Hashes: hashes}, nil
}

// describeTrees sets d.src and d.dst, the manifests of the image's tree
// and of the predecessor from (mounted at mnt), reading as few files as it
// can, and says where the hashes came from.
func (h *Host) describeTrees(ctx context.Context, d *deltaPlan, from *layout.Base, mnt string) (string, error) {
	// The two trees are on different devices: walk both at once.
	var src, dst *manifest.Manifest
	var serr, derr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		src, serr = h.recordedTree(ctx, d.tree, "the image's tree")
	}()
	dst, derr = h.recordedTree(ctx, mnt, "the tree of base "+from.Name())
	<-done
	if err := errors.Join(serr, derr); err != nil {
		return "", err
	}
	var err error
	switch {
	case src != nil && dst != nil:
		d.src, d.dst = src, dst
		return RecordsBoth, nil
	case src != nil:
		// The predecessor's files equal to the image's take their hashes
		// from the image's record; only the others are hashed.
		h.Log.Info("describing the predecessor's tree against the image's", "base", from.Name())
		d.src = src
		if d.dst, err = manifest.Build(ctx, mnt, manifest.BuildOptions{Exclude: excluded, Like: &manifest.Like{Root: d.tree, Manifest: src}}); err != nil {
			return "", fmt.Errorf("cannot describe the tree of base %s: %w", from.Name(), err)
		}
		return RecordImage, nil
	}
	hashes := RecordPredecessor
	if dst == nil {
		// Unhashed: describing the image's tree against it hashes the
		// files the two share as it compares them.
		hashes = RecordNone
		if dst, err = manifest.Build(ctx, mnt, manifest.BuildOptions{Exclude: excluded, NoHash: true}); err != nil {
			return "", fmt.Errorf("cannot describe the tree of base %s: %w", from.Name(), err)
		}
	}
	// A file equal to the predecessor's is read twice rather than hashed,
	// which is most of an update's files and most of its time on a slow CPU.
	h.Log.Info("describing the image's tree against the predecessor's", "from", from.Name())
	d.dst = dst
	if d.src, err = manifest.Build(ctx, d.tree, manifest.BuildOptions{Exclude: excluded, Like: &manifest.Like{Root: mnt, Manifest: dst}}); err != nil {
		return "", fmt.Errorf("cannot describe the image's tree: %w", err)
	}
	return hashes, nil
}

// recordedTree returns the manifest of the tree at root with the hashes
// of the record it carries, found without reading a file, or nil when it
// carries none or one that its tree contradicts (logged: an image built
// with a stale record, a tree changed after it was recorded).
func (h *Host) recordedTree(ctx context.Context, root, what string) (*manifest.Manifest, error) {
	start := time.Now()
	rec, err := manifest.Load(filepath.Join(root, manifest.RecordPath))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			h.Log.Warn("a recorded manifest is unreadable; reading the files instead", "tree", what, "err", err)
		}
		return nil, nil
	}
	loaded := time.Now()
	walked, err := manifest.Build(ctx, root, manifest.BuildOptions{Exclude: excluded, NoHash: true})
	if err != nil {
		return nil, fmt.Errorf("cannot describe %s: %w", what, err)
	}
	m, diff := manifest.HashesFrom(walked, rec)
	h.Log.Debug("record checked against its tree", "tree", what, "entries", len(rec.Entries),
		"load", loaded.Sub(start), "walk", time.Since(loaded), "usable", m != nil)
	if m == nil {
		h.Log.Warn("a recorded manifest does not describe its tree; reading the files instead",
			"tree", what, "differences", len(diff), "first", diff[0].String())
	}
	return m, nil
}

// mountImageTree checks the image's filesystem and mounts it read-only.
func (h *Host) mountImageTree(ctx context.Context, im *image.Image, from *layout.Base, fstype string) (*deltaPlan, error) {
	// The kernel is to parse only a filesystem that passed its checker.
	if err := h.checkImage(ctx, im); err != nil {
		return nil, err
	}
	mounter := image.LoopMounter{Run: h.Run, TempDir: h.MountDir}
	if err := h.Mkdir(h.MountDir); err != nil {
		return nil, err
	}
	tree, err := mounter.Mount(ctx, im.FSPath(), string(im.FSType))
	if err != nil {
		return nil, fmt.Errorf("cannot read the image's tree: %w", err)
	}
	return &deltaPlan{from: from, fstype: fstype, tree: tree,
		release: func(ctx context.Context) error { return mounter.Unmount(ctx, tree) }}, nil
}

// withBaseMounted activates base b when it is not active, mounts it
// read-only without replaying its journal at a mount point of its own,
// runs fn, and puts it back as it was. fstype is "" when b holds no
// filesystem; fn then runs with nothing mounted.
func (h *Host) withBaseMounted(ctx context.Context, vg string, b *layout.Base, fn func(mnt, fstype string) error) (err error) {
	if !b.LV.Active() {
		if err := h.LVM().Activate(ctx, vg, b.Name()); err != nil {
			return err
		}
		defer func() {
			err = errors.Join(err, h.LVM().Deactivate(context.WithoutCancel(ctx), vg, b.Name()))
		}()
	}
	dev := b.LV.DevPath()
	fstype, err := h.FS().Type(ctx, dev)
	if err != nil {
		return err
	}
	if fstype == "" {
		return fn("", "")
	}
	mnt := h.MountPoint(".ro-" + b.Name())
	if err := h.Mkdir(mnt); err != nil {
		return err
	}
	opts := []string{"ro", "noload"}
	if fstype == "xfs" {
		opts = []string{"ro", "norecovery", "nouuid"}
	}
	if err := h.FS().WorkMount(ctx, dev, mnt, fstype, opts...); err != nil {
		return err
	}
	err = fn(mnt, fstype)
	if uerr := h.FS().WorkUnmount(context.WithoutCancel(ctx), mnt); uerr != nil {
		return errors.Join(err, uerr)
	}
	os.Remove(mnt)
	return err
}

// snapshotBase makes the new base a thin snapshot of its predecessor, as
// a base under construction is: tagged, active, writable, not skipped.
func (h *Host) snapshotBase(ctx context.Context, vg, from, name string) error {
	return h.LVM().Snapshot(ctx, vg, from, name, lvm.SnapshotOpts{Tags: []string{lvm.TagBase}, Activate: true})
}

// fillDelta makes the snapshot independent of its predecessor (its own
// filesystem UUID, grown to size when the image needs more room) and
// syncs the image's tree onto it, recording the image's manifest.
func (h *Host) fillDelta(ctx context.Context, vg, name string, size uint64, d *deltaPlan, im *image.Image) (treesync.Report, error) {
	dev := "/dev/" + vg + "/" + name
	mnt := h.MountPoint(name)
	if err := h.Mkdir(mnt); err != nil {
		return treesync.Report{}, err
	}
	// A snapshot of a sealed base whose filesystem was left clean (a base
	// written from a checked image, or made by a delta and unmounted) needs
	// no check, as a layer of one does not. The base 'layout --init' made
	// was snapshotted from the mounted root: not clean, so checked in full.
	sb, ok := h.FS().Probe(dev)
	if err := h.FS().NewUUID(ctx, dev, d.fstype, mnt, ok && sb.Clean); err != nil {
		return treesync.Report{}, err
	}
	grow := size > d.from.LV.Size
	if grow {
		if err := h.LVM().Extend(ctx, vg, name, size); err != nil {
			return treesync.Report{}, err
		}
	}
	if err := h.FS().WorkMount(ctx, dev, mnt, d.fstype); err != nil {
		return treesync.Report{}, err
	}
	rep, err := h.syncMounted(ctx, dev, mnt, grow, d, im)
	if uerr := h.FS().WorkUnmount(context.WithoutCancel(ctx), mnt); uerr != nil {
		return rep, errors.Join(err, uerr)
	}
	if err == nil && !h.Dry() {
		os.Remove(mnt)
	}
	return rep, err
}

func (h *Host) syncMounted(ctx context.Context, dev, mnt string, grow bool, d *deltaPlan, im *image.Image) (treesync.Report, error) {
	if grow {
		if err := h.FS().Grow(ctx, dev, mnt, d.fstype); err != nil {
			return treesync.Report{}, err
		}
	}
	if h.Dry() {
		fmt.Fprintf(h.Out, "# sync the tree of %s onto %s, writing only what differs from %s\n", im.Path, mnt, d.from.Name())
		return treesync.Report{}, nil
	}
	// The record's directory is there before the sync, which sets the
	// root's mtime last: made after, it would leave the root's mtime
	// other than the record says, and the record stale.
	if err := os.MkdirAll(filepath.Join(mnt, manifest.RecordDir), 0o755); err != nil {
		return treesync.Report{}, fmt.Errorf("cannot record manifest: %w", err)
	}
	h.Log.Info("syncing the image's tree onto the snapshot", "from", d.from.Name(), "mnt", mnt)
	rep, err := treesync.Sync(ctx, d.tree, mnt, treesync.Options{Src: d.src, Dst: d.dst, Exclude: excluded, Logger: h.Log})
	if err != nil {
		return rep, fmt.Errorf("cannot sync the image's tree onto %s: %w", mnt, err)
	}
	if err := manifest.Save(filepath.Join(mnt, manifest.RecordPath), d.src); err != nil {
		return rep, err
	}
	return rep, syncFS(mnt)
}

// deltaSteps are the journal steps that replace create-base and
// write-image in an update taking the delta path. The old base is mounted
// for the merge while the tree is synced, as it is during a full write.
func (h *Host) deltaSteps(vg string, im *image.Image, plan *basePlan, src source, res *UpdateResult) []journal.Step {
	d, base := plan.delta, plan.name
	return []journal.Step{
		{Kind: stepCreateBaseSnapshot, Args: journal.Args{"vg": vg, "lv": base, "origin": d.from.Name()}},
		{Kind: stepSyncTree, Args: src.args(journal.Args{"vg": vg, "lv": base, "mnt": h.MountPoint(base), "image": im.Path, "imgmnt": d.tree}), Do: func(ctx context.Context) error {
			fill := func(ctx context.Context) error {
				rep, err := h.fillDelta(ctx, vg, base, plan.size, d, im)
				// The image's tree is done with: let it go before the
				// commit, after which a crash would leave it mounted
				// (recover only finishes the steps after the commit).
				err = errors.Join(err, d.close())
				if !h.Dry() {
					res.Base.Way.Sync = &rep
					res.Base.Written = rep.BytesWritten
				}
				return err
			}
			return h.both(ctx, fill, func(ctx context.Context) error { return h.mountSource(ctx, src) })
		}},
	}
}

// deltaKinds are the journal kinds of the delta path.
func (h *Host) deltaKinds(k journal.Kinds) {
	k[stepCreateBaseSnapshot] = journal.Kind{
		Do: func(ctx context.Context, a journal.Args) error {
			return h.snapshotBase(ctx, a["vg"], a["origin"], a["lv"])
		},
		Undo: h.removeIfExists,
	}
	k[stepSyncTree] = journal.Kind{Undo: func(ctx context.Context, a journal.Args) error {
		err := errors.Join(h.unmountIfMounted(ctx, a["mnt"]), h.releaseSource(ctx, a))
		// The image's filesystem, mounted by the process that crashed.
		if a["imgmnt"] != "" && h.MountedAt(a["imgmnt"]) && !h.Dry() {
			if uerr := (image.LoopMounter{Run: h.Run}).Unmount(ctx, a["imgmnt"]); uerr != nil {
				err = errors.Join(err, uerr)
			}
		}
		return err
	}}
}

// addBaseDelta is base --add's delta path, undone through u.
func (h *Host) addBaseDelta(ctx context.Context, u *undo.Stack, vg string, plan *basePlan, im *image.Image, res *BaseResult) (*BaseResult, error) {
	d, name := plan.delta, plan.name
	h.Log.Info("adding base by delta", "base", name, "from", d.from.Name(), "image", im.Path)
	if err := h.snapshotBase(ctx, vg, d.from.Name(), name); err != nil {
		return nil, err
	}
	u.Push("create "+name, func(ctx context.Context) error {
		return errors.Join(h.unmountIfMounted(ctx, h.MountPoint(name)), h.LVM().Remove(ctx, vg, name))
	})
	rep, err := h.fillDelta(ctx, vg, name, plan.size, d, im)
	if err != nil {
		return nil, err
	}
	if !h.Dry() {
		res.Way.Sync, res.Written = &rep, rep.BytesWritten
	}
	if err := h.LVM().Seal(ctx, vg, name); err != nil {
		return nil, err
	}
	return res, nil
}

// predecessorOf is the base a new base is a delta from by default: the
// running layer's.
func (h *Host) predecessorOf(t *layout.Tree) *layout.Base {
	if cur := h.CurrentLayer(t); cur != nil {
		return cur.Base
	}
	return nil
}
