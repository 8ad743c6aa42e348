package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/imgbase/imgbase/internal/command"
	"github.com/imgbase/imgbase/internal/hooks"
	"github.com/imgbase/imgbase/internal/image"
	"github.com/imgbase/imgbase/internal/image/sparse"
	"github.com/imgbase/imgbase/internal/image/verify"
	"github.com/imgbase/imgbase/internal/layout"
	"github.com/imgbase/imgbase/internal/lvm"
	"github.com/imgbase/imgbase/internal/nvr"
	"github.com/imgbase/imgbase/internal/undo"
)

// ImageRequest asks for a base made from an image file.
type ImageRequest struct {
	Image string
	// NVR names the base; "" reads it from the image's build metadata.
	NVR string
	// Size of the LV; 0 makes it the size of the image's filesystem.
	Size uint64
	// Progress, when set, is told how many bytes of the image are done.
	Progress func(done, total int64)
	Verify   verify.Options
	// Full writes the whole image even when a delta from a predecessor
	// base would do (see delta.go); FromBase names the predecessor
	// instead of the running layer's base.
	Full     bool
	FromBase string
}

// verify checks the image's checksum and signature as configured. It
// reads the file once and changes nothing, so dry runs do it too.
func (h *Host) verify(ctx context.Context, req ImageRequest) (verify.Result, error) {
	res, err := verify.Check(ctx, req.Image, req.Verify)
	if err != nil {
		return res, refuse("%v", err)
	}
	return res, nil
}

// verifier prepares the image's verification. A raw image is verified
// in the same read that writes it (writeChecked finishes it): a mismatch
// fails the write and the base is undone. A liveimg, which the kernel
// mounts to open, is verified in full first, as is every image in a dry
// run (which writes nothing); the Verifier is then nil.
func (h *Host) verifier(ctx context.Context, req ImageRequest) (*verify.Verifier, verify.Result, error) {
	v, err := verify.Prepare(req.Image, req.Verify)
	if err != nil {
		return nil, v.Result(), refuse("%v", err)
	}
	if !v.Pending() {
		return nil, v.Result(), nil
	}
	if f, err := image.Detect(req.Image); err == nil && f == image.Raw && !h.Dry() {
		return v, v.Result(), nil
	}
	v.Abort()
	res, err := h.verify(ctx, req)
	return nil, res, err
}

// finishVerify feeds v the bytes of the image file past its filesystem,
// which the write did not read, and checks the digests.
func finishVerify(ctx context.Context, im *image.Image, v *verify.Verifier) (verify.Result, error) {
	f, err := os.Open(im.Path)
	if err != nil {
		return v.Result(), fmt.Errorf("cannot verify image: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(im.Size, io.SeekStart); err != nil {
		return v.Result(), fmt.Errorf("cannot verify image %s: %w", im.Path, err)
	}
	if _, err := io.Copy(v, f); err != nil {
		return v.Result(), fmt.Errorf("cannot verify image %s: %w", im.Path, err)
	}
	if err := ctx.Err(); err != nil {
		return v.Result(), err
	}
	res, err := v.Finish()
	if err != nil {
		return res, refuse("%v", err)
	}
	return res, nil
}

// BaseResult says what AddBaseFromImage made.
type BaseResult struct {
	Base    string `json:"base"`
	Size    uint64 `json:"size"`
	FSType  string `json:"fstype"`
	Written int64  `json:"written"`
	// PoolBytes is the pool space the base took: its data chunks.
	PoolBytes int64 `json:"pool_bytes"`
	// Way says whether the base is a delta from its predecessor or a full
	// write, and why.
	Way Way `json:"way"`
}

// AddBaseFromImage installs an image as a new sealed base. Nothing is
// created when the image is refused (unknown format, truncated, corrupt,
// larger than the LV, not enough room in the pool).
func (h *Host) AddBaseFromImage(ctx context.Context, req ImageRequest) (*BaseResult, error) {
	t, err := h.Creating(ctx)
	if err != nil {
		return nil, err
	}
	if err := h.bootReady(); err != nil {
		return nil, err
	}
	// Verify before the kernel mounts anything of the image (a liveimg's
	// squashfs); a raw image while it is written.
	v, vres, err := h.verifier(ctx, req)
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
	u := &undo.Stack{Log: h.Log}
	res, err := h.addBase(ctx, u, t, im, req, v)
	if err != nil {
		return nil, u.Rollback(ctx, err)
	}
	h.postHook(ctx, hooks.BaseAdd, res.Base)
	return res, nil
}

// openImage opens an image file; inspecting it changes nothing, so a dry
// run does it for real. Its filesystem is checked by writeChecked.
func (h *Host) openImage(ctx context.Context, path string) (*image.Image, error) {
	run := h.Run
	if d, ok := run.(*command.Dry); ok {
		run = d.Next
	}
	env := image.Env{Run: run, Mount: image.LoopMounter{Run: run}, Log: h.Log}
	im, err := image.Open(ctx, path, env)
	if err != nil {
		return nil, refuse("%v", err)
	}
	return im, nil
}

// basePlan is what a new base from an image will be.
type basePlan struct {
	name  string
	nvr   nvr.NVR
	size  uint64
	chunk int64
	// delta is set when the base is made by the delta path.
	delta *deltaPlan
}

// planBase names and sizes the base of an opened image, refusing a name
// that is taken or invalid and an LV smaller than the image.
func (h *Host) planBase(ctx context.Context, t *layout.Tree, im *image.Image, req ImageRequest) (*basePlan, error) {
	name := req.NVR
	if name == "" {
		var err error
		if name, err = im.NVR(ctx); err != nil {
			return nil, refuse("%v; give the NVR: 'imgbase base --add NVR --size SIZE %s'", err, req.Image)
		}
	}
	if err := checkNewBase(t, name); err != nil {
		return nil, err
	}
	n, _ := nvr.Parse(name)
	size := req.Size
	if size == 0 {
		size = uint64(im.Size)
	}
	if uint64(im.Size) > size {
		return nil, refuse("cannot add base %s: the image's filesystem is %d bytes, larger than --size %d; give --size %dM or more",
			name, im.Size, size, (im.Size+(1<<20)-1)>>20)
	}
	return &basePlan{name: name, nvr: n, size: size, chunk: h.Pool(t).Chunk}, nil
}

// addBase creates, fills and seals the base of an opened image, pushing
// undo steps onto u.
func (h *Host) addBase(ctx context.Context, u *undo.Stack, t *layout.Tree, im *image.Image, req ImageRequest, v *verify.Verifier) (*BaseResult, error) {
	plan, err := h.planBase(ctx, t, im, req)
	if err != nil {
		return nil, err
	}
	if err := h.preflightPool(t.Pool, im); err != nil {
		return nil, err
	}
	if err := h.preHook(ctx, hooks.BaseAdd, plan.name); err != nil {
		return nil, err
	}
	name, chunk := plan.name, plan.chunk
	res := &BaseResult{Base: name, Size: plan.size, FSType: string(im.FSType)}
	if res.Way, err = h.planDelta(ctx, t, im, req, plan, h.predecessorOf(t)); err != nil {
		return nil, err
	}
	defer plan.delta.close()
	if plan.delta != nil {
		return h.addBaseDelta(ctx, u, t.VG, plan, im, res)
	}
	h.Log.Info("adding base", "base", name, "image", im.Path, "size", plan.size)
	if err := h.LVM().CreateThin(ctx, t.VG, t.Pool.Name, name, plan.size, []string{lvm.TagBase}); err != nil {
		return nil, err
	}
	u.Push("create "+name, func(ctx context.Context) error { return h.LVM().Remove(ctx, t.VG, name) })
	dev := "/dev/" + t.VG + "/" + name
	if h.Dry() {
		if err := h.checkImage(ctx, im); err != nil {
			return nil, err
		}
		fmt.Fprintf(h.Out, "# write %s (%d bytes, sparse) to %s\n", im.Path, im.Size, dev)
	} else {
		st, _, err := h.writeChecked(ctx, dev, im, chunk, req.Progress, v)
		if err != nil {
			return nil, err
		}
		res.Written, res.PoolBytes = st.Written, st.DataBytes(chunk)
		if err := h.FS().SeedChecksums(ctx, dev); err != nil {
			return nil, err
		}
	}
	if err := h.LVM().Seal(ctx, t.VG, name); err != nil {
		return nil, err
	}
	return res, nil
}

// checkImage runs the filesystem's own checker on the image.
func (h *Host) checkImage(ctx context.Context, im *image.Image) error {
	if err := im.Check(ctx); err != nil {
		return refuse("%v", err)
	}
	return nil
}

// writeChecked writes the image to dev while its filesystem is checked:
// both read the same file, and on two CPUs the check costs no time. A
// failed check fails the write, whose caller removes the LV. v, when not
// nil, digests the image in the same read and is finished here: a
// mismatch fails the write too.
func (h *Host) writeChecked(ctx context.Context, dev string, im *image.Image, chunk int64, progress func(done, total int64), v *verify.Verifier) (sparse.Stats, verify.Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	checked := make(chan error, 1)
	go func() {
		err := h.checkImage(ctx, im)
		if err != nil {
			cancel() // no point writing a damaged filesystem to the end
		}
		checked <- err
	}()
	var tee io.Writer
	if v != nil {
		tee = v
	}
	st, werr := h.writeImage(ctx, dev, im, chunk, progress, tee)
	if cerr := <-checked; cerr != nil {
		return st, verify.Result{}, cerr
	}
	if werr != nil || v == nil {
		return st, verify.Result{}, werr
	}
	vres, err := finishVerify(ctx, im, v)
	return st, vres, err
}

func (h *Host) writeImage(ctx context.Context, dev string, im *image.Image, chunk int64, progress func(done, total int64), tee io.Writer) (sparse.Stats, error) {
	// O_EXCL on a block device fails while anything else has it open.
	f, err := os.OpenFile(h.Path(dev), os.O_WRONLY|unix.O_EXCL, 0)
	if err != nil {
		return sparse.Stats{}, fmt.Errorf("cannot open %s: %w", dev, err)
	}
	defer f.Close()
	var p sparse.Progress
	if progress != nil {
		p = func(done int64) { progress(done, im.Size) }
	}
	st, err := sparse.WriteTee(ctx, f, im.ReaderAt(), im.Size, chunk, p, tee)
	if err != nil {
		return st, fmt.Errorf("cannot write the image to %s: %w", dev, err)
	}
	if err := f.Close(); err != nil {
		return st, fmt.Errorf("cannot write the image to %s: %w", dev, err)
	}
	return st, nil
}

// ErrNoSpace is a refusal for lack of room; it carries the figures.
var ErrNoSpace = errors.New("not enough space")

// preflightPool refuses an image whose data cannot fit in the pool's free
// space.
func (h *Host) preflightPool(pool *lvm.LV, im *image.Image) error {
	need := uint64(imageData(im))
	free := pool.DataFree()
	if need > free {
		return refuse("cannot add a base from %s: %v in pool %s: needs %dM, %dM free; remove an old base ('imgbase base --remove NVR') or extend the pool ('lvextend -L +SIZE %s')",
			im.Path, ErrNoSpace, pool.Name, need>>20, free>>20, pool.FullName())
	}
	return nil
}

// allocated returns the bytes a file occupies on disk, or 0.
func allocated(path string) int64 {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0
	}
	return st.Blocks * 512
}

func warnUnverified(h *Host, res verify.Result, path string) {
	if !res.Verified() {
		h.Log.Warn("the image is neither checksummed nor signed", "image", path)
	}
}
