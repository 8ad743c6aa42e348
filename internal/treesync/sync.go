package treesync

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/imgbase/imgbase/internal/manifest"
	"github.com/imgbase/imgbase/internal/sha256x"
)

// Options tune Sync.
type Options struct {
	Logger *slog.Logger
	// Src and Dst describe the two trees; each is built from its tree when
	// nil. A caller that records the source's manifest builds it once and
	// passes it. They must be true: Sync checks the source's file contents
	// against Src as it copies them, but leaves alone, unread, whatever Dst
	// says is already right.
	Src, Dst *manifest.Manifest
	// Workers and Exclude are used to build a missing manifest. An excluded
	// path is neither copied from the source nor removed from the
	// destination: it is the caller's, like a manifest recorded in the tree.
	// Manifests passed in must have been built with the same Exclude.
	Workers int
	Exclude []string
}

// Sync makes the tree at dst identical to the tree at src: type, mode,
// owner, xattrs, mtime, content, symlink target, device number and hard-link
// groups of every entry. An entry the manifests show unchanged gets no write
// at all; a metadata-only change is applied in place; changed content is
// written to a new file (preserving the source's holes) renamed over the old
// path, so another hard link to the old inode keeps its content. Every
// operation names a single component below a directory descriptor opened
// with O_NOFOLLOW from the root, so no symlink of either tree is followed.
// Directories get their metadata after their contents. The destination's
// filesystem is synced before Sync returns. On an error the destination is
// left part-way: the caller discards it (it is a snapshot nothing uses yet).
func Sync(ctx context.Context, src, dst string, o Options) (Report, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	srcfd, err := openRoot(src)
	if err != nil {
		return Report{}, err
	}
	defer unix.Close(srcfd)
	dstfd, err := openRoot(dst)
	if err != nil {
		return Report{}, err
	}
	defer unix.Close(dstfd)
	// The trees are usually on different devices (an image and a
	// snapshot): describe both at once.
	bo := manifest.BuildOptions{Workers: o.Workers, Exclude: o.Exclude}
	var srcErr, dstErr error
	var wg sync.WaitGroup
	if o.Src == nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if o.Src, srcErr = manifest.BuildFd(ctx, srcfd, bo); srcErr != nil {
				srcErr = fmt.Errorf("cannot describe the source tree: %w", srcErr)
			}
		}()
	}
	if o.Dst == nil {
		if o.Dst, dstErr = manifest.BuildFd(ctx, dstfd, bo); dstErr != nil {
			dstErr = fmt.Errorf("cannot describe the destination tree: %w", dstErr)
		}
	}
	wg.Wait()
	if err := errors.Join(srcErr, dstErr); err != nil {
		return Report{}, err
	}
	if len(o.Src.Entries) == 0 || len(o.Dst.Entries) == 0 || o.Src.Entries[0].Path != "." || o.Dst.Entries[0].Path != "." {
		return Report{}, errors.New("cannot sync: a manifest has no root entry")
	}
	p := makePlan(o.Src, o.Dst)
	s := &syncer{p: p, log: o.Logger, dstRoot: dstfd}
	err = s.run(ctx, srcfd, dstfd)
	if serr := unix.Syncfs(dstfd); err == nil && serr != nil {
		err = fmt.Errorf("cannot sync the destination filesystem: %w", serr)
	}
	r := p.report()
	r.BytesWritten = s.written
	if err != nil {
		return r, err
	}
	o.Logger.Debug("tree synced", "unchanged", r.Unchanged, "rewritten", r.Rewritten, "metadata", r.MetadataOnly,
		"added", r.Added, "removed", r.Removed, "bytes", r.BytesWritten)
	return r, nil
}

func openRoot(p string) (int, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("cannot open %s: %w", p, err)
	}
	return fd, nil
}

type syncer struct {
	p       *plan
	log     *slog.Logger
	dstRoot int
	written int64
	buf     []byte
}

// frame is a directory being synced: its descriptors in both trees.
type frame struct {
	path     string
	src, dst int
	e        *manifest.Entry
}

func (s *syncer) run(ctx context.Context, srcfd, dstfd int) (err error) {
	stack := []frame{{path: ".", src: srcfd, dst: dstfd, e: &s.p.src.Entries[0]}}
	// pop finishes the innermost directory: its metadata now that its
	// contents are done (which changed its mtime).
	pop := func() error {
		f := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		err := applyMeta(dirTarget{f.dst}, f.e)
		if len(stack) > 0 { // the root's descriptors belong to Sync
			unix.Close(f.src)
			unix.Close(f.dst)
		}
		if err != nil {
			return fmt.Errorf("cannot set metadata of %s: %w", manifest.Escape(f.path), err)
		}
		return nil
	}
	defer func() {
		for len(stack) > 1 {
			f := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			unix.Close(f.src)
			unix.Close(f.dst)
		}
	}()
	if err := s.prune(dstfd, "."); err != nil {
		return err
	}
	for i := 1; i < len(s.p.src.Entries); i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		e := &s.p.src.Entries[i]
		parent := manifest.Parent(e.Path)
		for stack[len(stack)-1].path != parent {
			if err := pop(); err != nil {
				return err
			}
		}
		top := stack[len(stack)-1]
		name := e.Path[strings.LastIndexByte(e.Path, '/')+1:]
		a := s.p.actions[i]
		if a != keep && a != member {
			s.log.Debug("sync", "path", manifest.Escape(e.Path), "action", a.String())
		}
		if e.Type == manifest.Dir && s.p.still[i] {
			// Its whole subtree is as wanted: skip it.
			for i+1 < len(s.p.src.Entries) && strings.HasPrefix(s.p.src.Entries[i+1].Path, e.Path+"/") {
				i++
			}
			continue
		}
		if e.Type == manifest.Dir {
			f, err := s.enterDir(top, name, e, a)
			if err != nil {
				return err
			}
			stack = append(stack, f)
			continue
		}
		if err := s.entry(top, name, e, a); err != nil {
			return err
		}
	}
	for len(stack) > 0 {
		if err := pop(); err != nil {
			return err
		}
	}
	return nil
}

func (a action) String() string {
	return [...]string{keep: "keep", meta: "metadata", write: "write", link: "link", mkdir: "mkdir", member: "member"}[a]
}

func (s *syncer) enterDir(top frame, name string, e *manifest.Entry, a action) (frame, error) {
	if a == mkdir {
		if err := unix.Mkdirat(top.dst, name, 0o700); err != nil {
			return frame{}, fmt.Errorf("cannot create directory %s: %w", manifest.Escape(e.Path), err)
		}
	}
	sfd, err := unix.Openat(top.src, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return frame{}, fmt.Errorf("cannot open source directory %s: %w", manifest.Escape(e.Path), err)
	}
	dfd, err := unix.Openat(top.dst, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(sfd)
		return frame{}, fmt.Errorf("cannot open directory %s: %w", manifest.Escape(e.Path), err)
	}
	if a != mkdir {
		if err := s.prune(dfd, e.Path); err != nil {
			unix.Close(sfd)
			unix.Close(dfd)
			return frame{}, err
		}
	}
	return frame{path: e.Path, src: sfd, dst: dfd, e: e}, nil
}

// prune removes the entries of a kept directory that the source does not
// have, or has with another type, before anything is created in it.
func (s *syncer) prune(dirfd int, path string) error {
	for _, name := range s.p.prune[path] {
		if err := removeAll(dirfd, name, joinPath(path, name)); err != nil {
			return err
		}
	}
	return nil
}

func joinPath(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}

func (s *syncer) entry(top frame, name string, e *manifest.Entry, a action) error {
	switch a {
	case keep, member:
		return nil
	case meta:
		if err := applyMeta(atTarget{top.dst, name}, e); err != nil {
			return fmt.Errorf("cannot set metadata of %s: %w", manifest.Escape(e.Path), err)
		}
		return nil
	}
	tmp := tmpName()
	err := s.create(top, name, tmp, e, a)
	if err == nil {
		if err = unix.Renameat(top.dst, tmp, top.dst, name); err != nil {
			err = fmt.Errorf("cannot put %s in place: %w", manifest.Escape(e.Path), err)
		}
	}
	if err != nil {
		unix.Unlinkat(top.dst, tmp, 0)
	}
	return err
}

// create makes tmp in the destination directory: the entry's new inode, or
// a link to its group head's, with all its metadata.
func (s *syncer) create(top frame, name, tmp string, e *manifest.Entry, a action) error {
	var err error
	if a == link {
		return s.linkHead(top.dst, tmp, e)
	}
	switch e.Type {
	case manifest.File:
		err = s.copyFile(top.src, name, top.dst, tmp, e)
	case manifest.Symlink:
		err = unix.Symlinkat(e.Target, top.dst, tmp)
	case manifest.Char:
		err = unix.Mknodat(top.dst, tmp, unix.S_IFCHR|0o600, int(e.Rdev))
	case manifest.Block:
		err = unix.Mknodat(top.dst, tmp, unix.S_IFBLK|0o600, int(e.Rdev))
	case manifest.FIFO:
		err = unix.Mknodat(top.dst, tmp, unix.S_IFIFO|0o600, 0)
	case manifest.Socket:
		err = unix.Mknodat(top.dst, tmp, unix.S_IFSOCK|0o600, 0)
	default:
		err = fmt.Errorf("unknown type %v", e.Type)
	}
	if err != nil {
		return fmt.Errorf("cannot create %s: %w", manifest.Escape(e.Path), err)
	}
	if err := applyMeta(atTarget{top.dst, tmp}, e); err != nil {
		return fmt.Errorf("cannot set metadata of %s: %w", manifest.Escape(e.Path), err)
	}
	return nil
}

// linkHead links tmp to the inode of e's group head, which comes earlier in
// manifest order and so is already in place.
func (s *syncer) linkHead(dstdir int, tmp string, e *manifest.Entry) error {
	hdir, err := openDirPath(s.dstRoot, manifest.Parent(e.Link))
	if err != nil {
		return fmt.Errorf("cannot link %s: %w", manifest.Escape(e.Path), err)
	}
	defer unix.Close(hdir)
	if err := unix.Linkat(hdir, e.Link[strings.LastIndexByte(e.Link, '/')+1:], dstdir, tmp, 0); err != nil {
		return fmt.Errorf("cannot link %s to %s: %w", manifest.Escape(e.Path), manifest.Escape(e.Link), err)
	}
	return nil
}

// openDirPath opens a directory below root one component at a time, none
// followed if it is a symlink.
func openDirPath(root int, p string) (int, error) {
	fd, err := unix.Openat(root, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil || p == "." {
		return fd, err
	}
	for _, c := range strings.Split(p, "/") {
		next, err := unix.Openat(fd, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			return -1, fmt.Errorf("cannot open %s: %w", manifest.Escape(p), err)
		}
		fd = next
	}
	return fd, nil
}

func tmpName() string {
	var b [8]byte
	rand.Read(b[:])
	return ".imgbase-sync-" + hex.EncodeToString(b[:])
}

// copyFile writes the source file name as tmp in dstdir: its data extents
// only (SEEK_DATA/SEEK_HOLE), after sizing it, so its holes stay holes. The
// content is hashed on the way and must match the manifest.
func (s *syncer) copyFile(srcdir int, name string, dstdir int, tmp string, e *manifest.Entry) error {
	in, err := unix.Openat(srcdir, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(in)
	var st unix.Stat_t
	if err := unix.Fstat(in, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size != e.Size {
		return errors.New("the source differs from its manifest")
	}
	out, err := unix.Openat(dstdir, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	defer unix.Close(out)
	if err := unix.Ftruncate(out, e.Size); err != nil {
		return err
	}
	if s.buf == nil {
		s.buf = make([]byte, 1<<20)
	}
	h := sha256x.New()
	var zero [64 << 10]byte
	hashZeros := func(n int64) {
		for n > 0 {
			k := min(n, int64(len(zero)))
			h.Write(zero[:k])
			n -= k
		}
	}
	var off int64
	for off < e.Size {
		data, err := unix.Seek(in, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			data = e.Size
		} else if err != nil {
			data = off
		}
		data = min(data, e.Size)
		hashZeros(data - off)
		if data == e.Size {
			break
		}
		end, err := unix.Seek(in, data, unix.SEEK_HOLE)
		if err != nil || end > e.Size {
			end = e.Size
		}
		for pos := data; pos < end; {
			n, err := unix.Pread(in, s.buf[:min(int64(len(s.buf)), end-pos)], pos)
			if err != nil {
				return err
			}
			if n == 0 {
				return errors.New("the source shrank while copied")
			}
			h.Write(s.buf[:n])
			for w := 0; w < n; {
				k, err := unix.Pwrite(out, s.buf[w:n], pos+int64(w))
				if err != nil {
					return err
				}
				w += k
			}
			s.written += int64(n)
			pos += int64(n)
		}
		off = end
	}
	if [32]byte(h.Sum(nil)) != e.SHA256 {
		return errors.New("the source's content differs from its manifest")
	}
	return nil
}

// removeAll removes name from dirfd and, for a directory, everything below.
func removeAll(dirfd int, name, rel string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("cannot remove %s: %w", manifest.Escape(rel), err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("cannot remove %s: %w", manifest.Escape(rel), err)
		}
		names, err := readNames(fd)
		for _, c := range names {
			if err = removeAll(fd, c, rel+"/"+c); err != nil {
				break
			}
		}
		unix.Close(fd)
		if err != nil {
			return err
		}
		if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil {
			return fmt.Errorf("cannot remove %s: %w", manifest.Escape(rel), err)
		}
		return nil
	}
	if err := unix.Unlinkat(dirfd, name, 0); err != nil {
		return fmt.Errorf("cannot remove %s: %w", manifest.Escape(rel), err)
	}
	return nil
}
