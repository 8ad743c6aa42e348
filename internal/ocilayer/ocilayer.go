// Package ocilayer applies OCI image layers (tar, gzip or zstd) to a root
// directory, in order, as they stream in: no temporary copy of a layer or
// of the image is made, and each layer's digest (and diffID, when given)
// is checked over exactly the bytes that were read.
//
// A layer carries whiteouts (".wh.NAME" removes NAME of the layers below,
// ".wh..wh..opq" empties its directory of them), owners, modes with
// setuid/setgid/sticky, xattrs (security.capability, security.selinux,
// user.*), hard links, symlinks, device nodes, fifos, sparse files and
// mtimes; all are applied. Zero runs of regular files become holes.
//
// Safety: a layer is untrusted until its digest is checked at its end, and
// by then it has been written, so extraction itself must be safe against a
// crafted layer. Every entry's parent directory is opened with openat2
// RESOLVE_IN_ROOT, which resolves symlinks and ".." as if the root were
// "/", and the entry's own name is then created with the *at calls without
// following it. A symlink in the layer can therefore point anywhere, yet
// nothing written through it lands outside the root, and a hard link can
// only name a file inside it. Names with a ".." component are refused
// outright: no honest layer has them. openat2 needs Linux 5.6.
//
// A failed Apply (an I/O error, a digest mismatch, a cancelled context)
// leaves the root partly written: the caller discards it (imgbase removes
// the new base).
package ocilayer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"archive/tar"

	"github.com/imgbase/imgbase/internal/sha256x"
)

// Layer describes one blob to apply.
type Layer struct {
	Digest string // "sha256:…" of the blob as read (compressed); required
	DiffID string // "sha256:…" of the uncompressed tar; checked when set
}

// DigestError is a layer whose bytes do not hash to what the manifest
// or config says: corrupt in transit or storage, or tampered with.
type DigestError struct {
	What  string // "digest" or "diffID"
	Want  string
	Got   string
	Cause error // the extraction error the bad content caused, if any
}

func (e *DigestError) Error() string {
	return fmt.Sprintf("layer %s does not match: want %s, got %s (corrupt or tampered)", e.What, e.Want, e.Got)
}

func (e *DigestError) Unwrap() error { return e.Cause }

// Stats counts what one Apply did.
type Stats struct {
	Read    int64 // blob bytes read (compressed)
	Written int64 // file content bytes, holes included
	Entries int
}

const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// DefaultMaxExpansion bounds how far a layer's files may exceed the tar
// bytes that carry them. archive/tar expands the holes of sparse entries
// into zeros, which cost CPU though they are not written, and a crafted
// header can claim a file of 2^62 bytes: without a bound, checking its
// zeros would never end.
const DefaultMaxExpansion = 64 << 30

// Root is an open root directory that layers are applied to.
type Root struct {
	// MaxExpansion: see DefaultMaxExpansion.
	MaxExpansion int64

	dir  string
	fd   int
	proc string // "/proc/self/fd/" for xattrs on names that cannot be opened
}

// Open opens dir, which must exist, as a Root.
func Open(dir string) (*Root, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("cannot open %s: %w", dir, err)
	}
	return &Root{MaxExpansion: DefaultMaxExpansion, dir: dir, fd: fd, proc: "/proc/self/fd/"}, nil
}

// Close releases the root's descriptor.
func (r *Root) Close() error { return unix.Close(r.fd) }

// Apply reads one layer blob from blob and applies it. progress, when not
// nil, is called with the count of blob bytes read so far.
func (r *Root) Apply(ctx context.Context, blob io.Reader, l Layer, progress func(read int64)) (Stats, error) {
	var st Stats
	want, err := parseDigest(l.Digest)
	if err != nil {
		return st, err
	}
	var wantDiff []byte
	if l.DiffID != "" {
		if wantDiff, err = parseDigest(l.DiffID); err != nil {
			return st, err
		}
	}
	blobSum := newPipedHash(sha256x.New())
	defer blobSum.close()
	cr := &countingReader{r: blob, h: blobSum, progress: progress}
	br := bufio.NewReaderSize(cr, 1<<20)
	// A blob that cannot be decompressed or parsed is, most often, not
	// the blob named: read it to its end and say so if its digest differs.
	mismatch := func(cause error) error {
		if ctx.Err() == nil {
			if _, err := io.Copy(io.Discard, br); err == nil {
				if got := blobSum.sum(); !bytes.Equal(got, want) {
					return &DigestError{What: "digest", Want: l.Digest, Got: "sha256:" + hex.EncodeToString(got), Cause: cause}
				}
			}
		}
		return cause
	}
	dec, closeDec, err := decompressor(br)
	if err != nil {
		return st, mismatch(fmt.Errorf("cannot read layer %s: %w", l.Digest, err))
	}
	defer closeDec()
	// An uncompressed blob is its own tar: its digest's hash is the
	// diffID's, and a second pass of sha256 over it would only cost CPU.
	plain := dec == io.Reader(br)
	var diff *pipedHash
	if wantDiff != nil && !plain {
		diff = newPipedHash(sha256x.New())
		defer diff.close()
		dec = io.TeeReader(dec, diff)
	}
	tarIn := &countingReader{r: dec, h: io.Discard}
	a := applier{root: r, ctx: ctx, created: map[string]bool{}, buf: make([]byte, 1<<20), in: tarIn}
	if err := a.run(tar.NewReader(tarIn)); err != nil {
		err = mismatch(fmt.Errorf("cannot apply layer %s: %w", l.Digest, err))
		st.Read, st.Written, st.Entries = cr.n, a.written, a.entries
		return st, err
	}
	// The tar end marker may be followed by padding, and the compressed
	// stream by its trailer: both are part of what the digests cover.
	if _, err := io.Copy(io.Discard, dec); err != nil {
		return st, fmt.Errorf("cannot read layer %s: %w", l.Digest, err)
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		return st, fmt.Errorf("cannot read layer %s: %w", l.Digest, err)
	}
	st.Read, st.Written, st.Entries = cr.n, a.written, a.entries
	sum := blobSum.sum()
	if !bytes.Equal(sum, want) {
		return st, &DigestError{What: "digest", Want: l.Digest, Got: "sha256:" + hex.EncodeToString(sum)}
	}
	if wantDiff != nil {
		got := sum
		if diff != nil {
			got = diff.sum()
		}
		if !bytes.Equal(got, wantDiff) {
			return st, &DigestError{What: "diffID", Want: l.DiffID, Got: "sha256:" + hex.EncodeToString(got)}
		}
	}
	if err := a.finishDirs(); err != nil {
		return st, fmt.Errorf("cannot apply layer %s: %w", l.Digest, err)
	}
	return st, nil
}

func parseDigest(d string) ([]byte, error) {
	h, ok := strings.CutPrefix(d, "sha256:")
	b, err := hex.DecodeString(h)
	if !ok || err != nil || len(b) != sha256x.Size {
		return nil, fmt.Errorf("cannot apply layer: %q is not a sha256 digest", d)
	}
	return b, nil
}

type countingReader struct {
	r        io.Reader
	h        io.Writer // sees every byte read
	n        int64
	progress func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.h.Write(p[:n])
		c.n += int64(n)
		if c.progress != nil {
			c.progress(c.n)
		}
	}
	return n, err
}

// decompressor recognises gzip and zstd by their magic numbers, which is
// surer than media types (docker's and OCI's, with or without +gzip).
func decompressor(br *bufio.Reader) (io.Reader, func(), error) {
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		z, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, err
		}
		return z, func() { z.Close() }, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		z, err := zstd.NewReader(br)
		if err != nil {
			return nil, nil, err
		}
		return z, z.Close, nil
	}
	return br, func() {}, nil
}

type dirTime struct {
	path         string
	atime, mtime time.Time
}

type applier struct {
	root    *Root
	ctx     context.Context
	created map[string]bool // paths this layer wrote, kept from its own whiteouts
	dirs    []dirTime       // mtimes set last: writing into a directory changes it
	buf     []byte
	written int64
	entries int
	in      *countingReader // the tar stream, to bound expansion
}

func (a *applier) run(tr *tar.Reader) error {
	for {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		a.entries++
		if err := a.entry(tr, hdr); err != nil {
			return fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
	}
}

// clean turns a tar name into a path from the root ("/a/b"), refusing "..".
func clean(name string) (string, error) {
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", errors.New("the name has a \"..\" component")
		}
	}
	return path.Clean("/" + name), nil
}

func (a *applier) entry(tr *tar.Reader, hdr *tar.Header) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	}
	p, err := clean(hdr.Name)
	if err != nil {
		return err
	}
	dir, base := path.Split(p)
	if base == opaqueMarker {
		return a.opaque(dir)
	}
	if strings.HasPrefix(base, whiteoutPrefix) {
		name := base[len(whiteoutPrefix):]
		if name == "" || name == "." || name == ".." {
			// ".wh..." would remove the parent, which for the root
			// is outside it.
			return fmt.Errorf("whiteout of %q", name)
		}
		victim := path.Join(dir, name)
		if a.created[victim] {
			return nil
		}
		pfd, err := a.parent(dir, false)
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil
			}
			return err
		}
		defer unix.Close(pfd)
		return removeAllAt(pfd, name)
	}
	a.markCreated(p)
	if p == "/" {
		if hdr.Typeflag != tar.TypeDir {
			return errors.New("the root can only be a directory")
		}
		return a.meta(a.root.fd, ".", hdr, true)
	}
	pfd, err := a.parent(dir, true)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)

	var old unix.Stat_t
	exists := unix.Fstatat(pfd, base, &old, unix.AT_SYMLINK_NOFOLLOW) == nil
	if exists && !(hdr.Typeflag == tar.TypeDir && old.Mode&unix.S_IFMT == unix.S_IFDIR) {
		if err := removeAllAt(pfd, base); err != nil {
			return err
		}
		exists = false
	}

	switch hdr.Typeflag {
	case tar.TypeDir:
		if !exists {
			if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
				return err
			}
		}
		fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return a.meta(fd, "", hdr, false)
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), p)
		defer f.Close()
		if err := a.content(f, tr, hdr.Size); err != nil {
			return err
		}
		return a.meta(fd, "", hdr, true)
	case tar.TypeSymlink:
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return err
		}
		return a.metaAt(pfd, base, hdr, false)
	case tar.TypeLink:
		t, err := clean(hdr.Linkname)
		if err != nil {
			return fmt.Errorf("link target: %w", err)
		}
		tdir, tbase := path.Split(t)
		if tbase == "" || tbase == "." {
			return errors.New("link target is the root")
		}
		tfd, err := a.parent(tdir, false)
		if err != nil {
			return fmt.Errorf("link target %q: %w", hdr.Linkname, err)
		}
		defer unix.Close(tfd)
		// No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink,
		// as tar does, and never what it points to.
		if err := unix.Linkat(tfd, tbase, pfd, base, 0); err != nil {
			return fmt.Errorf("link target %q: %w", hdr.Linkname, err)
		}
		return nil
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		mode := uint32(hdr.Mode & 0o7777)
		switch hdr.Typeflag {
		case tar.TypeChar:
			mode |= unix.S_IFCHR
		case tar.TypeBlock:
			mode |= unix.S_IFBLK
		default:
			mode |= unix.S_IFIFO
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknodat(pfd, base, mode, int(dev)); err != nil {
			return err
		}
		return a.metaAt(pfd, base, hdr, true)
	}
	return fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
}

// parent opens dir (a path from the root) resolved inside the root,
// creating missing directories when create is set.
func (a *applier) parent(dir string, create bool) (int, error) {
	dir = strings.Trim(dir, "/")
	if dir == "" {
		dir = "."
	}
	fd, err := a.resolve(dir)
	if err == nil || !create || !errors.Is(err, unix.ENOENT) {
		return fd, err
	}
	// Create the missing parents one by one: each is made in the
	// directory its own parent resolved to, so they too stay inside.
	prev, err := a.resolve(".")
	if err != nil {
		return -1, err
	}
	comps := strings.Split(dir, "/")
	for i, c := range comps {
		fd, err := a.resolve(strings.Join(comps[:i+1], "/"))
		if errors.Is(err, unix.ENOENT) {
			made := false
			if err = unix.Mkdirat(prev, c, 0o755); err == nil || errors.Is(err, unix.EEXIST) {
				made = err == nil
				fd, err = unix.Openat(prev, c, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			}
			if err == nil && made {
				// 0755 whatever imgbase's umask, as tar makes them.
				err = unix.Fchmodat(prev, c, 0o755, 0)
			}
		}
		unix.Close(prev)
		if err != nil {
			return -1, err
		}
		prev = fd
	}
	return prev, nil
}

func (a *applier) resolve(p string) (int, error) {
	for {
		fd, err := unix.Openat2(a.root.fd, p, &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
		})
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue // a concurrent rename elsewhere; RESOLVE_IN_ROOT asks to retry
		}
		return fd, err
	}
}

// opaque removes what lower layers put in dir, at any depth; this
// layer's own entries, before or after the marker, stay.
func (a *applier) opaque(dir string) error {
	pfd, err := a.parent(dir, true)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	dir = path.Clean(dir)
	a.markCreated(dir) // an opaque directory above keeps this one
	return a.prune(pfd, dir)
}

// markCreated records p and its parents as this layer's: an opaque
// directory above keeps them.
func (a *applier) markCreated(p string) {
	for ; !a.created[p]; p = path.Dir(p) {
		a.created[p] = true
	}
}

func (a *applier) prune(dfd int, dir string) error {
	names, err := readNames(dfd)
	if err != nil {
		return err
	}
	for _, n := range names {
		p := path.Join(dir, n)
		if !a.created[p] {
			if err := removeAllAt(dfd, n); err != nil {
				return err
			}
			continue
		}
		// A directory this layer wrote into may still hold lower
		// entries beside its own.
		fd, err := unix.Openat(dfd, n, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
			continue
		}
		if err != nil {
			return err
		}
		err = a.prune(fd, p)
		unix.Close(fd)
		if err != nil {
			return err
		}
	}
	return nil
}

func readNames(dirfd int) ([]string, error) {
	fd, err := unix.Openat(dirfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "dir")
	defer f.Close()
	return f.Readdirnames(-1)
}

// removeAllAt removes name in dirfd and, for a directory, everything in it,
// never following a symlink.
func removeAllAt(dirfd int, name string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return unix.Unlinkat(dirfd, name, 0)
	}
	fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	names, err := readNames(fd)
	if err == nil {
		for _, n := range names {
			if err = removeAllAt(fd, n); err != nil {
				break
			}
		}
	}
	unix.Close(fd)
	if err != nil {
		return err
	}
	return unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
}

// content writes size bytes from r to f, seeking over zero blocks so that
// they stay holes.
func (a *applier) content(f *os.File, r io.Reader, size int64) error {
	const block = 4096
	var off int64
	hole := false
	for off < size {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		n, err := io.ReadFull(r, a.buf[:min(int64(len(a.buf)), size-off)])
		if err != nil {
			return fmt.Errorf("cannot read content: %w", err)
		}
		for s := 0; s < n; {
			e := min(s+block, n)
			// Extend a run of data or of zeros as far as it goes, then
			// write the data or skip the zeros in one call.
			z := isZero(a.buf[s:e])
			for e < n && isZero(a.buf[e:min(e+block, n)]) == z {
				e = min(e+block, n)
			}
			if z {
				hole = true
			} else {
				if _, err := f.WriteAt(a.buf[s:e], off+int64(s)); err != nil {
					return err
				}
			}
			s = e
		}
		off += int64(n)
		a.written += int64(n)
		if a.written-a.in.n > a.root.MaxExpansion {
			return fmt.Errorf("sparse files expand to more than %d bytes beyond the layer's data", a.root.MaxExpansion)
		}
	}
	if hole {
		// A trailing hole has no write to set the size.
		return f.Truncate(size)
	}
	return nil
}

var zeros = make([]byte, 4096)

func isZero(b []byte) bool { return bytes.Equal(b, zeros[:len(b)]) }

// meta sets owner, mode, xattrs and (for non-directories) times on fd;
// name is "." only for the root itself.
func (a *applier) meta(fd int, name string, hdr *tar.Header, times bool) error {
	if name == "." {
		return a.metaAt(fd, ".", hdr, true)
	}
	// chown first: it clears setuid bits and security.capability.
	if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
		return fmt.Errorf("cannot set owner: %w", err)
	}
	if err := unix.Fchmod(fd, uint32(hdr.Mode&0o7777)); err != nil {
		return fmt.Errorf("cannot set mode: %w", err)
	}
	for k, v := range xattrs(hdr) {
		if err := unix.Fsetxattr(fd, k, []byte(v), 0); err != nil {
			return fmt.Errorf("cannot set xattr %s: %w", k, err)
		}
	}
	if hdr.Typeflag == tar.TypeDir {
		// Found again by path once the layer is written; the path
		// is resolved in the root then, like every other.
		p, _ := clean(hdr.Name)
		a.dirs = append(a.dirs, dirTime{p, atime(hdr), hdr.ModTime})
		return nil
	}
	if !times {
		return nil
	}
	ts := []unix.Timespec{unix.NsecToTimespec(atime(hdr).UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
	if err := unix.UtimesNanoAt(fd, "", ts, unix.AT_EMPTY_PATH); err != nil {
		return fmt.Errorf("cannot set times: %w", err)
	}
	return nil
}

// metaAt is meta for a name that is not opened: symlinks, device nodes,
// fifos (opening a fifo would block), and the root.
func (a *applier) metaAt(dirfd int, name string, hdr *tar.Header, chmod bool) error {
	if err := unix.Fchownat(dirfd, name, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("cannot set owner: %w", err)
	}
	if chmod {
		// The name was just made by mknodat (or is the root): no
		// symlink to follow.
		if err := unix.Fchmodat(dirfd, name, uint32(hdr.Mode&0o7777), 0); err != nil {
			return fmt.Errorf("cannot set mode: %w", err)
		}
	}
	if xs := xattrs(hdr); len(xs) > 0 {
		p := a.root.proc + strconv.Itoa(dirfd) + "/" + name
		for k, v := range xs {
			if err := unix.Lsetxattr(p, k, []byte(v), 0); err != nil {
				return fmt.Errorf("cannot set xattr %s: %w", k, err)
			}
		}
	}
	if name == "." {
		a.dirs = append(a.dirs, dirTime{"/", atime(hdr), hdr.ModTime})
		return nil
	}
	ts := []unix.Timespec{unix.NsecToTimespec(atime(hdr).UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
	if err := unix.UtimesNanoAt(dirfd, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("cannot set times: %w", err)
	}
	return nil
}

// finishDirs sets directory times, deepest last-listed first.
func (a *applier) finishDirs() error {
	for i := len(a.dirs) - 1; i >= 0; i-- {
		d := a.dirs[i]
		fd, err := a.resolve(strings.TrimPrefix(d.path, "/") + "/.")
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			continue // removed by a later entry of the same layer
		}
		if err != nil {
			return err
		}
		ts := []unix.Timespec{unix.NsecToTimespec(d.atime.UnixNano()), unix.NsecToTimespec(d.mtime.UnixNano())}
		err = unix.UtimesNanoAt(fd, "", ts, unix.AT_EMPTY_PATH)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("cannot set times of %s: %w", d.path, err)
		}
	}
	return nil
}

func atime(hdr *tar.Header) time.Time {
	if hdr.AccessTime.IsZero() {
		return hdr.ModTime
	}
	return hdr.AccessTime
}

// xattrs are the entry's SCHILY.xattr PAX records, as written by GNU tar,
// Go's archive/tar and the container tools.
func xattrs(hdr *tar.Header) map[string]string {
	var m map[string]string
	for k, v := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if m == nil {
				m = map[string]string{}
			}
			m[name] = v
		}
	}
	return m
}
