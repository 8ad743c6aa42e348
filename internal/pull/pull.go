// Package pull writes a resolved image's layers into a root directory:
// each layer comes from the blob cache when it holds it, else from the
// image's source, teed into the cache as it streams; ocilayer applies and
// verifies it. Download and extraction overlap: a reader goroutine keeps
// a bounded buffer filled while the layer is written.
package pull

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/imgbase/imgbase/internal/blobcache"
	"github.com/imgbase/imgbase/internal/nvr"
	"github.com/imgbase/imgbase/internal/ocilayer"
	"github.com/imgbase/imgbase/internal/registry"
)

// Progress is reported as layers stream.
type Progress struct {
	Layer, Layers    int   // index of the current layer, count
	LayerDone        int64 // blob bytes of the current layer read so far
	LayerSize        int64
	Done, Total      int64 // blob bytes over all layers
	Cached           bool  // the current layer comes from the cache
	Elapsed          time.Duration
	BytesPerSec, ETA float64 // ETA in seconds; 0 until known
}

// Options for Extract.
type Options struct {
	Cache    *blobcache.Cache // nil: no cache
	Progress func(Progress)   // called often; throttle when printing
	Logger   *slog.Logger
}

// Result says where the bytes came from.
type Result struct {
	Downloaded int64 // blob bytes read from the source
	FromCache  int64 // blob bytes read from the cache
	Written    int64 // file content bytes written
}

// Layers is the source of an image's layers (a *registry.Image).
type Layers interface {
	OpenLayer(ctx context.Context, n int) (io.ReadCloser, error)
}

// Extract applies img's layers, in order, into root, an empty directory
// (the new base's mounted filesystem). On error root is partly written and
// the caller discards it; the cache keeps only blobs that were verified.
func Extract(ctx context.Context, img *registry.Image, root string, o Options) (Result, error) {
	return extract(ctx, img, img.Layers, root, o)
}

func extract(ctx context.Context, src Layers, layers []registry.Layer, root string, o Options) (Result, error) {
	var res Result
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	r, err := ocilayer.Open(root)
	if err != nil {
		return res, err
	}
	defer r.Close()
	var total int64
	for _, l := range layers {
		total += l.Size
	}
	start := time.Now()
	var before int64
	for i, l := range layers {
		p := Progress{Layer: i, Layers: len(layers), LayerSize: l.Size, Total: total}
		report := func(n int64) {
			if o.Progress == nil {
				return
			}
			p.LayerDone, p.Done, p.Elapsed = n, before+n, time.Since(start)
			if s := p.Elapsed.Seconds(); s > 0 && p.Done > 0 {
				p.BytesPerSec = float64(p.Done) / s
				p.ETA = float64(p.Total-p.Done) / p.BytesPerSec
			}
			o.Progress(p)
		}
		st, cached, err := applyOne(ctx, r, src, i, l, o, func(n int64) { p.Cached = true; report(n) }, report)
		if err != nil {
			return res, fmt.Errorf("cannot write layer %d of %d: %w", i+1, len(layers), err)
		}
		if cached {
			res.FromCache += st.Read
		} else {
			res.Downloaded += st.Read
		}
		res.Written += st.Written
		before += l.Size
		o.Logger.Info("layer written", "layer", i+1, "of", len(layers), "digest", l.Digest,
			"bytes", st.Read, "cached", cached, "entries", st.Entries)
	}
	return res, nil
}

func applyOne(ctx context.Context, r *ocilayer.Root, src Layers, i int, l registry.Layer, o Options,
	cachedProgress, progress func(int64)) (ocilayer.Stats, bool, error) {
	want := ocilayer.Layer{Digest: l.Digest, DiffID: l.DiffID}
	if o.Cache != nil {
		f, err := o.Cache.Open(l.Digest)
		if err == nil {
			st, err := r.Apply(ctx, f, want, cachedProgress)
			f.Close()
			var de *ocilayer.DigestError
			if !errors.As(err, &de) {
				return st, true, err
			}
			// Damaged on disk since it was verified. Applying the
			// layer again from the source replaces what this pass wrote.
			o.Logger.Warn("cached layer damaged, downloading it again", "digest", l.Digest, "err", err)
			o.Cache.Remove(l.Digest)
		} else if !errors.Is(err, fs.ErrNotExist) {
			o.Logger.Warn("blob cache unusable, downloading", "digest", l.Digest, "err", err)
		}
	}
	rc, err := src.OpenLayer(ctx, i)
	if err != nil {
		return ocilayer.Stats{}, false, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	in := prefetch(ctx, rc)
	defer in.Close()
	var blob io.Reader = in
	var w *blobcache.Writer
	if o.Cache != nil {
		// Apply hashes every byte teed here and fails on a mismatch,
		// which aborts the entry: the cache need not hash it again.
		if w, err = o.Cache.CreateVerified(l.Digest); err != nil {
			o.Logger.Warn("cannot cache layer", "digest", l.Digest, "err", err)
		} else {
			blob = io.TeeReader(in, w)
		}
	}
	st, err := r.Apply(ctx, blob, want, progress)
	if w != nil {
		if err != nil {
			w.Abort()
		} else if cerr := w.Commit(); cerr != nil {
			o.Logger.Warn("cannot cache layer", "digest", l.Digest, "err", cerr)
		}
	}
	return st, false, err
}

// prefetch reads rc ahead into a bounded queue of chunks, so that the
// network (or the source disk) and the writes to the new root overlap. The
// chunks are reused once read: a layer of any size keeps the same few
// mebibytes (a fresh chunk per read left the collector a gigabyte of
// garbage per image, and the pull's peak RSS at 62 MB). Four of them: the
// reader only needs to stay ahead of the writes, and each chunk queued is
// a mebibyte of the 40 MB the pull may hold at its peak.
func prefetch(ctx context.Context, rc io.ReadCloser) io.ReadCloser {
	const chunk, depth = 1 << 20, 4
	p := &prefetcher{ch: make(chan []byte, depth), free: make(chan []byte, depth+1), errc: make(chan error, 1), rc: rc}
	for range depth + 1 { // depth queued, one in the consumer's hands
		p.free <- make([]byte, chunk)
	}
	go func() {
		defer close(p.ch)
		for {
			var b []byte
			select {
			case b = <-p.free:
			case <-ctx.Done():
				p.errc <- ctx.Err()
				return
			}
			n, err := io.ReadFull(rc, b[:chunk])
			if n > 0 {
				select {
				case p.ch <- b[:n]:
				case <-ctx.Done():
					p.errc <- ctx.Err()
					return
				}
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				p.errc <- io.EOF
				return
			}
			if err != nil {
				p.errc <- err
				return
			}
		}
	}()
	return p
}

type prefetcher struct {
	ch   chan []byte // chunks read, in order
	free chan []byte // chunks to read into
	errc chan error
	cur  []byte // what is left of the chunk being read
	buf  []byte // that chunk, whole, to hand back
	err  error
	rc   io.ReadCloser
}

func (p *prefetcher) Read(b []byte) (int, error) {
	for len(p.cur) == 0 {
		if p.buf != nil {
			p.free <- p.buf
			p.buf = nil
		}
		if p.err != nil {
			return 0, p.err
		}
		c, ok := <-p.ch
		if !ok {
			p.err = <-p.errc
			continue
		}
		p.cur, p.buf = c, c
	}
	n := copy(b, p.cur)
	p.cur = p.cur[n:]
	return n, nil
}

// Close closes the source, which ends the reader goroutine's next read,
// and waits for the goroutine: the chunks it still queues are handed back
// so that it never waits for one.
func (p *prefetcher) Close() error {
	err := p.rc.Close()
	for c := range p.ch {
		p.free <- c
	}
	return err
}

// LabelNVR is the label that names an image's base.
const LabelNVR = "imgbase.nvr"

// TreeNVRPath is where an image's build records its NVR (oVirt Node's
// layout), relative to the root.
const TreeNVRPath = "usr/share/imgbase/build/meta/nvr"

// NVR names the base built from img: its imgbase.nvr label, else the NVR
// file in the extracted tree at root (read inside root: a symlink in the
// image cannot make imgbase read a host file). root may be "" to consult
// the label only.
func NVR(img *registry.Image, root string) (nvr.NVR, error) {
	if s := img.Label(LabelNVR); s != "" {
		n, err := nvr.Parse(s)
		if err != nil {
			return nvr.NVR{}, fmt.Errorf("cannot name the base of %s: its label %s: %w", img.Ref, LabelNVR, err)
		}
		return n, nil
	}
	if root != "" {
		s, err := readInRoot(root, TreeNVRPath)
		if err != nil {
			return nvr.NVR{}, fmt.Errorf("cannot name the base of %s: %w", img.Ref, err)
		}
		if s != "" {
			n, err := nvr.Parse(s)
			if err != nil {
				return nvr.NVR{}, fmt.Errorf("cannot name the base of %s: /%s: %w", img.Ref, TreeNVRPath, err)
			}
			return n, nil
		}
	}
	return nvr.NVR{}, fmt.Errorf("cannot name the base of %s: it has no label %s and no /%s; set one (LABEL %s=Name-Version-Release in its Containerfile) or give the NVR on the command line",
		img.Ref, LabelNVR, TreeNVRPath, LabelNVR)
}

func readInRoot(root, name string) (string, error) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return "", err
	}
	defer r.Close()
	f, err := r.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 256))
	return strings.TrimSpace(string(b)), err
}
