package manifest

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"slices"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/imgbase/imgbase/internal/sha256x"
)

// BuildOptions tune Build.
type BuildOptions struct {
	// Workers read and hash files in parallel, and as many directories
	// are walked at once; 0 means DefaultWorkers.
	Workers int
	// Exclude names paths (relative to the root, any depth) left out with
	// everything below them: a record kept in the tree it describes, such
	// as the manifest itself, is not part of that tree.
	Exclude []string
	// Like, when set, is a tree to compare files with instead of hashing
	// them (see Like).
	Like *Like
	// NoHash leaves every hash unset: the manifest is only for a build
	// with Like, which fills in the hashes of the files found equal. It
	// cannot be saved.
	NoHash bool
}

// DefaultWorkers is the number of files read at once. A tree read cold is
// bound by the latency of each small read, which more requests in flight
// hide: the 10,030 files (662 MB) of the v2 test image, read cold in a TCG
// guest, took 82 s with one reader, 50 s with two, 39 s with eight and 40 s
// with 32. Warm, the work is CPU-bound and extra workers only wait.
const DefaultWorkers = 8

// Build describes the tree below root. Every entry is reached from an open
// directory descriptor by a single name with O_NOFOLLOW/AT_SYMLINK_NOFOLLOW,
// so a symlink is recorded as a symlink and never followed out of the tree,
// even if the tree changes while it is read. The walk stays on root's
// filesystem: a mount point below it is an error, since what is mounted
// there is not part of the tree.
func Build(ctx context.Context, root string, o BuildOptions) (*Manifest, error) {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("cannot open %s: %w", root, err)
	}
	defer unix.Close(fd)
	return BuildFd(ctx, fd, o)
}

// BuildFd is Build on a directory already open as dirfd (not closed).
func BuildFd(ctx context.Context, dirfd int, o BuildOptions) (*Manifest, error) {
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	var st unix.Stat_t
	if err := unix.Fstat(dirfd, &st); err != nil {
		return nil, fmt.Errorf("cannot stat the root: %w", err)
	}
	w := &walker{
		dev:     st.Dev,
		heads:   map[[2]uint64]*Entry{},
		members: map[*Entry][2]uint64{},
		jobs:    make(chan hashJob, 64),
		noHash:  o.NoHash,
		walkers: make(chan struct{}, o.Workers),
	}
	likefd := -1
	if o.Like != nil {
		if o.Like.Manifest == nil {
			return nil, errors.New("cannot compare with a tree without its manifest")
		}
		fd, err := unix.Open(o.Like.Root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("cannot open %s: %w", o.Like.Root, err)
		}
		defer unix.Close(fd)
		likefd = fd
		w.like = &likeWalk{idx: o.Like.Manifest.Index(), hashed: !o.Like.Manifest.unhashed}
	}
	for _, p := range o.Exclude {
		if w.exclude == nil {
			w.exclude = map[string]bool{}
		}
		w.exclude[p] = true
	}
	root, err := entryOf(dirfd, "", ".", &st)
	if err != nil {
		return nil, err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, o.Workers)
	for i := 0; i < o.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := sha256x.New()
			buf, lbuf := make([]byte, 256<<10), make([]byte, 256<<10)
			for j := range w.jobs {
				if errs[i] == nil && ctx.Err() == nil {
					if j.like != nil {
						errs[i] = describeLike(h, buf, lbuf, j.f, j.like, j.e, j.le, w.like.hashed)
					} else {
						errs[i] = hashInto(h, buf, j.f, j.e)
					}
					if errs[i] != nil {
						cancel()
					}
				}
				j.f.Close()
				if j.like != nil {
					j.like.Close()
				}
			}
		}()
	}
	tree := w.walk(ctx, cancel, dirfd, likefd, ".")
	entries := []*Entry{root}
	var werrs []error
	tree.flatten(&entries, &werrs)
	close(w.jobs)
	wg.Wait()
	// One failure cancels the rest: report it, not what it cancelled.
	if err := cause(append(werrs, errs...)); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m := &Manifest{Entries: make([]Entry, len(entries)), unhashed: o.NoHash}
	// A hard-link group's head is its first path in manifest order; the
	// walk, done in parallel, hashed whichever path it met first, and
	// every path of the group shares that inode's hash.
	head := map[[2]uint64]string{}
	for i, e := range entries {
		m.Entries[i] = *e
		key, ok := w.members[e]
		if !ok {
			continue
		}
		me := &m.Entries[i]
		me.SHA256 = w.heads[key].SHA256
		if h, ok := head[key]; ok {
			me.Link = h
		} else {
			head[key] = e.Path
		}
	}
	return m, nil
}

// hashJob is a file to hash, or to compare with its counterpart in Like
// (like, described by le) when it has one.
type hashJob struct {
	f    *os.File
	e    *Entry
	like *os.File
	le   *Entry
}

// walker describes a tree with several directories read at once: a tree
// read cold is bound by the latency of each inode and directory block, as
// its files are (see DefaultWorkers), and more lookups in flight hide it.
// Each directory's walk gives its entries in order and the walks of its
// subdirectories, run on their own goroutine while a slot in walkers is
// free, else in line; flatten puts them in manifest order.
type walker struct {
	dev     uint64
	jobs    chan hashJob
	exclude map[string]bool
	like    *likeWalk
	noHash  bool
	walkers chan struct{}

	mu sync.Mutex
	// heads maps the dev, ino of a multiply-linked inode to the entry of it
	// met first, the one hashed; members maps each entry of such an inode
	// to its dev, ino.
	heads   map[[2]uint64]*Entry
	members map[*Entry][2]uint64
}

// dirWalk is the walk of one directory: its entries in order, and for a
// directory entry at index i, the walk of its subtree in subs[i].
type dirWalk struct {
	entries []*Entry
	subs    map[int]*subWalk
	err     error // ends the directory's entries
}

// subWalk is the walk of a subdirectory, done when done is closed.
type subWalk struct {
	done chan struct{}
	walk *dirWalk
}

// flatten appends the walk's entries to out in manifest order, waiting for
// each subdirectory's walk, and its errors to errs.
func (d *dirWalk) flatten(out *[]*Entry, errs *[]error) {
	for i, e := range d.entries {
		*out = append(*out, e)
		if s := d.subs[i]; s != nil {
			<-s.done
			s.walk.flatten(out, errs)
		}
	}
	if d.err != nil {
		*errs = append(*errs, d.err)
	}
}

// cause is the first of errs that is not a cancellation, else the first.
func cause(errs []error) error {
	var first error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if !errors.Is(err, context.Canceled) {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// walk describes directory rel, open as dirfd; likefd is the same
// directory of Like, -1 when there is none. cancel stops the whole build
// on an error, which the walk also records where flatten finds it.
func (w *walker) walk(ctx context.Context, cancel func(), dirfd, likefd int, rel string) *dirWalk {
	d := &dirWalk{}
	if d.err = w.walkDir(ctx, cancel, dirfd, likefd, rel, d); d.err != nil {
		cancel()
	}
	return d
}

func (w *walker) walkDir(ctx context.Context, cancel func(), dirfd, likefd int, rel string, d *dirWalk) error {
	names, err := readNames(dirfd)
	if err != nil {
		return fmt.Errorf("cannot read directory %s: %w", Escape(rel), err)
	}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := name
		if rel != "." {
			p = rel + "/" + name
		}
		if w.exclude[p] {
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("cannot stat %s: %w", Escape(p), err)
		}
		e, err := entryOf(dirfd, name, p, &st)
		if err != nil {
			return err
		}
		d.entries = append(d.entries, e)
		if e.Type != Dir && st.Nlink > 1 {
			key := [2]uint64{st.Dev, st.Ino}
			w.mu.Lock()
			w.members[e] = key
			_, seen := w.heads[key]
			if !seen {
				w.heads[key] = e
			}
			w.mu.Unlock()
			if seen {
				continue // the inode is hashed once, by the entry met first
			}
		}
		switch e.Type {
		case File:
			if w.noHash {
				break
			}
			f, err := openFile(dirfd, name, p, &st)
			if err != nil {
				return err
			}
			j := hashJob{f: f, e: e}
			j.like, j.le = w.like.openLike(likefd, name, e)
			select {
			case w.jobs <- j:
			case <-ctx.Done():
				f.Close()
				if j.like != nil {
					j.like.Close()
				}
				return ctx.Err()
			}
		case Dir:
			if st.Dev != w.dev {
				return fmt.Errorf("cannot describe %s: another filesystem is mounted there", Escape(p))
			}
			cfd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("cannot open directory %s: %w", Escape(p), err)
			}
			lfd := -1
			if w.like != nil {
				lfd = openLikeDir(likefd, name)
			}
			sub := &subWalk{done: make(chan struct{})}
			if d.subs == nil {
				d.subs = map[int]*subWalk{}
			}
			d.subs[len(d.entries)-1] = sub
			run := func() {
				sub.walk = w.walk(ctx, cancel, cfd, lfd, p)
				unix.Close(cfd)
				if lfd >= 0 {
					unix.Close(lfd)
				}
				close(sub.done)
			}
			select {
			case w.walkers <- struct{}{}:
				go func() {
					defer func() { <-w.walkers }()
					run()
				}()
			default:
				run()
			}
		}
	}
	return nil
}

// openFile opens a regular file for reading without following a symlink and
// checks it is still the inode that was stat'ed.
func openFile(dirfd int, name, p string, st *unix.Stat_t) (*os.File, error) {
	flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK
	fd, err := unix.Openat(dirfd, name, flags|unix.O_NOATIME, 0)
	if errors.Is(err, unix.EPERM) { // O_NOATIME needs ownership or CAP_FOWNER
		fd, err = unix.Openat(dirfd, name, flags, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot open %s: %w", Escape(p), err)
	}
	var fst unix.Stat_t
	if err := unix.Fstat(fd, &fst); err != nil || fst.Dev != st.Dev || fst.Ino != st.Ino {
		unix.Close(fd)
		return nil, fmt.Errorf("cannot read %s: it changed while being read", Escape(p))
	}
	return os.NewFile(uintptr(fd), p), nil
}

func readNames(dirfd int) ([]string, error) {
	// A second descriptor: os.File takes ownership and closes its own.
	fd, err := unix.Openat(dirfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), ".")
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

// entryOf builds the entry of name in dirfd (name "" for dirfd itself),
// without its hash.
func entryOf(dirfd int, name, p string, st *unix.Stat_t) (*Entry, error) {
	e := &Entry{Path: p, Mode: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid, Sec: st.Mtim.Sec, Nsec: st.Mtim.Nsec}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		e.Type, e.Size = File, st.Size
	case unix.S_IFDIR:
		e.Type = Dir
	case unix.S_IFLNK:
		e.Type, e.Mode = Symlink, 0
		t, err := ReadlinkAt(dirfd, name)
		if err != nil {
			return nil, fmt.Errorf("cannot read symlink %s: %w", Escape(p), err)
		}
		e.Target = t
	case unix.S_IFCHR:
		e.Type, e.Rdev = Char, st.Rdev
	case unix.S_IFBLK:
		e.Type, e.Rdev = Block, st.Rdev
	case unix.S_IFIFO:
		e.Type = FIFO
	case unix.S_IFSOCK:
		e.Type = Socket
	default:
		return nil, fmt.Errorf("cannot describe %s: unknown file type %#o", Escape(p), st.Mode&unix.S_IFMT)
	}
	x, err := ReadXattrs(dirfd, name)
	if err != nil {
		return nil, fmt.Errorf("cannot read extended attributes of %s: %w", Escape(p), err)
	}
	e.Xattrs = x
	return e, nil
}

// ReadlinkAt reads the target of the symlink name in dirfd.
func ReadlinkAt(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

var zeros = make([]byte, 256<<10)

// hashInto sets e.SHA256 to the hash of f's logical content. Holes, found
// with SEEK_DATA/SEEK_HOLE, are hashed as zeros without being read.
func hashInto(h hash.Hash, buf []byte, f *os.File, e *Entry) error {
	h.Reset()
	fd := int(f.Fd())
	var off int64
	for off < e.Size {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			data = e.Size // only a hole is left
		} else if err != nil {
			data = off // no SEEK_DATA: read everything
		}
		data = min(data, e.Size)
		for n := data - off; n > 0; {
			k := min(n, int64(len(zeros)))
			h.Write(zeros[:k])
			n -= k
		}
		if data >= e.Size {
			break
		}
		end, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil || end > e.Size {
			end = e.Size
		}
		if _, err := io.CopyBuffer(h, io.NewSectionReader(f, data, end-data), buf); err != nil {
			return fmt.Errorf("cannot read %s: %w", Escape(e.Path), err)
		}
		off = end
	}
	// A file that grew while read still hashes only its recorded size;
	// one that shrank is an error rather than a hash of zeros.
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Size != e.Size {
		return fmt.Errorf("cannot read %s: it changed while being read", Escape(e.Path))
	}
	h.Sum(e.SHA256[:0])
	return nil
}
