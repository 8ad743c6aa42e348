// Package blobcache keeps image blobs (layers, configs) by digest so that
// pulling an updated tag downloads only the layers that changed.
//
// Only verified blobs enter: a blob is written to a temporary file, its
// sha256 computed over what was written (by the cache, or by a caller
// that hashes the same bytes itself: CreateVerified), and it is renamed to
// its digest's name only when that matches, so a cut download or a
// corrupt blob leaves nothing under a digest's name.
//
// A blob is not synced to disk: the cache is a cache, and waiting for the
// writeback of a layer of hundreds of megabytes (which the page cache
// writes back on its own) would hold up the pull that fills it. After a
// power cut a blob may so be found truncated under its name; whoever reads
// one checks its digest (pull does, as it applies it), drops it and
// downloads it again.
//
// The cache is capped in bytes: after each entry, the least recently used
// blobs (by mtime, which a hit refreshes) are removed until it fits. Clean
// removes all blobs but those still wanted, for imgbase's garbage
// collection.
//
// Layout: DIR/sha256/<hex> for blobs, DIR/tmp/ for blobs being written.
package blobcache

import (
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/imgbase/imgbase/internal/sha256x"
)

// DefaultDir is where imgbase keeps its blob cache.
const DefaultDir = "/var/cache/imgbase/blobs"

// Cache is a blob cache in a directory.
type Cache struct {
	dir string
	max int64
	log *slog.Logger
	now func() time.Time
}

// Open opens (creating it if needed) the cache in dir, capped at max bytes.
func Open(dir string, max int64, log *slog.Logger) (*Cache, error) {
	for _, d := range []string{dir, filepath.Join(dir, "sha256"), filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("cannot open blob cache: %w", err)
		}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Cache{dir: dir, max: max, log: log, now: time.Now}, nil
}

func hexOf(digest string) (string, error) {
	h, ok := strings.CutPrefix(digest, "sha256:")
	if b, err := hex.DecodeString(h); !ok || err != nil || len(b) != sha256x.Size || strings.ToLower(h) != h {
		return "", fmt.Errorf("cannot use blob cache: %q is not a sha256 digest", digest)
	}
	return h, nil
}

func (c *Cache) path(h string) string { return filepath.Join(c.dir, "sha256", h) }

// Open returns the cached blob with digest, or an error matching
// fs.ErrNotExist when it is not cached. A hit counts as a use.
func (c *Cache) Open(digest string) (*os.File, error) {
	h, err := hexOf(digest)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(c.path(h))
	if err != nil {
		return nil, fmt.Errorf("cannot open cached blob %s: %w", digest, err)
	}
	t := c.now()
	os.Chtimes(c.path(h), t, t) // best effort: only the eviction order depends on it
	return f, nil
}

// Has says whether digest is cached.
func (c *Cache) Has(digest string) bool {
	h, err := hexOf(digest)
	if err != nil {
		return false
	}
	_, err = os.Stat(c.path(h))
	return err == nil
}

// Remove drops digest from the cache, e.g. when it was found damaged.
func (c *Cache) Remove(digest string) error {
	h, err := hexOf(digest)
	if err != nil {
		return err
	}
	if err := os.Remove(c.path(h)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot remove cached blob %s: %w", digest, err)
	}
	return nil
}

// Writer receives one blob. Write never fails, so that a cache that cannot
// take a blob (its disk full) never fails the pull it is teed from; the
// first error is returned by Commit instead.
type Writer struct {
	c    *Cache
	want string
	f    *os.File
	h    hash.Hash
	n    int64
	err  error
	done bool
}

// Create starts writing the blob with digest; Commit hashes what was
// written and checks it.
func (c *Cache) Create(digest string) (*Writer, error) {
	w, err := c.create(digest)
	if err == nil {
		w.h = sha256x.New()
	}
	return w, err
}

// CreateVerified starts writing a blob that the caller hashes itself, byte
// for byte as it is written here (a layer teed to the cache while applied,
// whose digest the apply checks): hashing it twice would cost a second
// pass of the CPU over the whole blob. Commit only when the caller's hash
// matched the digest.
func (c *Cache) CreateVerified(digest string) (*Writer, error) {
	return c.create(digest)
}

func (c *Cache) create(digest string) (*Writer, error) {
	if _, err := hexOf(digest); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(filepath.Join(c.dir, "tmp"), "blob-*")
	if err != nil {
		return nil, fmt.Errorf("cannot write cached blob %s: %w", digest, err)
	}
	return &Writer{c: c, want: digest, f: f}, nil
}

func (w *Writer) Write(p []byte) (int, error) {
	if w.err == nil {
		if w.h != nil {
			w.h.Write(p)
		}
		if _, err := w.f.Write(p); err != nil {
			w.err = err
		}
		w.n += int64(len(p))
	}
	return len(p), nil
}

// DigestMismatchError is a blob whose content does not hash to its name.
type DigestMismatchError struct{ Want, Got string }

func (e *DigestMismatchError) Error() string {
	return fmt.Sprintf("blob %s does not match its digest (got %s)", e.Want, e.Got)
}

// Commit checks the digest (for a CreateVerified writer the caller did)
// and, when it matches, makes the blob a cache entry, then evicts blobs
// beyond the cap. Otherwise the blob is dropped.
func (w *Writer) Commit() error {
	if w.done {
		return errors.New("cannot commit cached blob: already closed")
	}
	w.done = true
	tmp := w.f.Name()
	err := w.err
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if w.h != nil && err == nil {
		if got := "sha256:" + hex.EncodeToString(w.h.Sum(nil)); got != w.want {
			err = &DigestMismatchError{Want: w.want, Got: got}
		}
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cannot cache blob %s: %w", w.want, err)
	}
	h, _ := hexOf(w.want)
	if err := os.Rename(tmp, w.c.path(h)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cannot cache blob %s: %w", w.want, err)
	}
	return w.c.evict()
}

// Abort drops the blob; after Commit it does nothing.
func (w *Writer) Abort() {
	if !w.done {
		w.done = true
		w.f.Close()
		os.Remove(w.f.Name())
	}
}

type blob struct {
	name  string
	size  int64
	mtime time.Time
}

func (c *Cache) list() ([]blob, error) {
	entries, err := os.ReadDir(filepath.Join(c.dir, "sha256"))
	if err != nil {
		return nil, fmt.Errorf("cannot list blob cache: %w", err)
	}
	var out []blob
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		out = append(out, blob{e.Name(), info.Size(), info.ModTime()})
	}
	return out, nil
}

// Size is the bytes the cache holds.
func (c *Cache) Size() (int64, error) {
	bs, err := c.list()
	var n int64
	for _, b := range bs {
		n += b.size
	}
	return n, err
}

func (c *Cache) evict() error {
	bs, err := c.list()
	if err != nil {
		return err
	}
	var total int64
	for _, b := range bs {
		total += b.size
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].mtime.Before(bs[j].mtime) })
	for _, b := range bs {
		if total <= c.max {
			break
		}
		if err := os.Remove(c.path(b.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("cannot evict cached blob: %w", err)
		}
		c.log.Debug("evicted cached blob", "digest", "sha256:"+b.name, "bytes", b.size)
		total -= b.size
	}
	return nil
}

// Clean removes every blob whose digest is not in keep, and leftovers of
// interrupted writes. It returns the count and bytes removed.
func (c *Cache) Clean(keep map[string]bool) (int, int64, error) {
	bs, err := c.list()
	if err != nil {
		return 0, 0, err
	}
	var n int
	var freed int64
	for _, b := range bs {
		if keep["sha256:"+b.name] {
			continue
		}
		if err := os.Remove(c.path(b.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return n, freed, fmt.Errorf("cannot clean blob cache: %w", err)
		}
		n++
		freed += b.size
	}
	tmps, _ := os.ReadDir(filepath.Join(c.dir, "tmp"))
	for _, e := range tmps {
		os.Remove(filepath.Join(c.dir, "tmp", e.Name()))
	}
	return n, freed, nil
}

// Put copies r into the cache as digest: a convenience for callers that
// hold the whole blob (configs, manifests).
func (c *Cache) Put(digest string, r io.Reader) error {
	w, err := c.Create(digest)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Abort()
		return fmt.Errorf("cannot cache blob %s: %w", digest, err)
	}
	return w.Commit()
}
