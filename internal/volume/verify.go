package volume

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/sys/unix"
)

// MismatchError is a copy that differs from its source: the copy is not
// trusted and nothing that depends on it is done.
type MismatchError struct {
	Path string // relative to the copied directory
	What string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("cannot trust the copy: %s differs (%s)", e.Path, e.What)
}

// VerifyCopy checks that every entry of the directory tree src (one
// filesystem: mounts below it are not entered) is in dst the same: type,
// mode, owner, size, modification time, content (holes read as zeros),
// symlink target, device number, extended attributes (ACLs, SELinux
// labels) and hard links. Entries dst has beyond src are allowed
// (lost+found of a new filesystem). Entries whose change time is at or
// after since were being changed while they were copied (a live /var/log):
// they are returned instead of compared; a zero since compares everything.
func VerifyCopy(src, dst string, since time.Time) (changed []string, err error) {
	var rootDev uint64
	links := map[uint64]uint64{} // source inode → copy inode
	c := &comparer{links: links, a: make([]byte, 1<<20), b: make([]byte, 1<<20)}
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, werr error) error {
		if werr != nil {
			if errors.Is(werr, fs.ErrNotExist) && p != src {
				return nil // deleted since it was listed: a live tree
			}
			return fmt.Errorf("cannot verify the copy: %w", werr)
		}
		rel, _ := filepath.Rel(src, p)
		var s unix.Stat_t
		if err := unix.Lstat(p, &s); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil
			}
			return fmt.Errorf("cannot verify the copy: %w", &fs.PathError{Op: "lstat", Path: p, Err: err})
		}
		if p == src {
			rootDev = s.Dev
		} else if s.Dev != rootDev {
			return fs.SkipDir // another filesystem mounted below src
		}
		if !since.IsZero() && !time.Unix(s.Ctim.Unix()).Before(since) {
			changed = append(changed, rel)
			return nil
		}
		if err := c.sameEntry(p, filepath.Join(dst, rel), rel, &s); err != nil {
			return err
		}
		return nil
	})
	return changed, err
}

// comparer holds what comparing entries shares: the hard links seen and
// two read buffers, reused for every file.
type comparer struct {
	links map[uint64]uint64
	a, b  []byte
}

func (c *comparer) sameEntry(sp, dp, rel string, s *unix.Stat_t) error {
	var d unix.Stat_t
	if err := unix.Lstat(dp, &d); err != nil {
		return &MismatchError{Path: rel, What: "missing in the copy"}
	}
	mismatch := func(format string, args ...any) error {
		return &MismatchError{Path: rel, What: fmt.Sprintf(format, args...)}
	}
	if s.Mode != d.Mode {
		return mismatch("mode %o, copy %o", s.Mode, d.Mode)
	}
	if s.Uid != d.Uid || s.Gid != d.Gid {
		return mismatch("owner %d:%d, copy %d:%d", s.Uid, s.Gid, d.Uid, d.Gid)
	}
	if err := sameXattrs(sp, dp); err != nil {
		return mismatch("%v", err)
	}
	switch s.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return nil // a directory's time changes as the copy fills it
	case unix.S_IFLNK:
		a, _ := os.Readlink(sp)
		b, _ := os.Readlink(dp)
		if a != b {
			return mismatch("symlink to %q, copy to %q", a, b)
		}
		return nil
	case unix.S_IFCHR, unix.S_IFBLK:
		if s.Rdev != d.Rdev {
			return mismatch("device %d, copy %d", s.Rdev, d.Rdev)
		}
	case unix.S_IFREG:
		if s.Size != d.Size {
			return mismatch("size %d, copy %d", s.Size, d.Size)
		}
		if s.Nlink > 1 {
			if prev, seen := c.links[s.Ino]; seen && prev != d.Ino {
				return mismatch("hard link broken in the copy")
			}
			c.links[s.Ino] = d.Ino
		}
		if err := c.sameContent(sp, dp); err != nil {
			return mismatch("%v", err)
		}
	}
	// A filesystem that keeps whole seconds (ext4 with 128-byte inodes)
	// drops the nanoseconds of a copy onto it.
	if s.Mtim != d.Mtim && !(d.Mtim.Nsec == 0 && d.Mtim.Sec == s.Mtim.Sec) {
		return mismatch("modification time %d, copy %d", s.Mtim.Nano(), d.Mtim.Nano())
	}
	return nil
}

func sameXattrs(a, b string) error {
	xa, err := xattrs(a)
	if err != nil {
		return err
	}
	xb, err := xattrs(b)
	if err != nil {
		return err
	}
	for k, v := range xa {
		w, ok := xb[k]
		if !ok {
			return fmt.Errorf("extended attribute %s missing in the copy", k)
		}
		if !bytes.Equal(v, w) {
			return fmt.Errorf("extended attribute %s differs", k)
		}
	}
	return nil
}

func xattrs(p string) (map[string][]byte, error) {
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(p, buf)
	if errors.Is(err, unix.ERANGE) {
		if n, err = unix.Llistxattr(p, nil); err == nil {
			buf = make([]byte, n)
			n, err = unix.Llistxattr(p, buf)
		}
	}
	if errors.Is(err, unix.ENOTSUP) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot list extended attributes of %s: %w", p, err)
	}
	out := map[string][]byte{}
	for _, name := range bytes.Split(buf[:n], []byte{0}) {
		if len(name) == 0 {
			continue
		}
		sz, err := unix.Lgetxattr(p, string(name), nil)
		if err != nil {
			return nil, fmt.Errorf("cannot read extended attribute %s of %s: %w", name, p, err)
		}
		v := make([]byte, sz)
		if sz, err = unix.Lgetxattr(p, string(name), v); err != nil {
			return nil, fmt.Errorf("cannot read extended attribute %s of %s: %w", name, p, err)
		}
		out[string(name)] = v[:sz]
	}
	return out, nil
}

// sameContent compares two files of equal size where either holds data;
// where both have holes both read zeros, so a sparse file of terabytes
// costs only its data.
func (c *comparer) sameContent(a, b string) error {
	fa, err := os.Open(a)
	if err != nil {
		return err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return err
	}
	defer fb.Close()
	st, err := fa.Stat()
	if err != nil {
		return err
	}
	ranges := union(dataRanges(fa, st.Size()), dataRanges(fb, st.Size()))
	ba, bb := c.a, c.b
	for _, r := range ranges {
		for off := r[0]; off < r[1]; {
			n := int(min(int64(len(ba)), r[1]-off))
			if _, err := fa.ReadAt(ba[:n], off); err != nil && err != io.EOF {
				return err
			}
			if _, err := fb.ReadAt(bb[:n], off); err != nil && err != io.EOF {
				return err
			}
			if !bytes.Equal(ba[:n], bb[:n]) {
				return fmt.Errorf("content differs near byte %d", off)
			}
			off += int64(n)
		}
	}
	return nil
}

// dataRanges lists the [start, end) ranges of f that may hold data; a
// filesystem without SEEK_DATA reports the whole file.
func dataRanges(f *os.File, size int64) [][2]int64 {
	var out [][2]int64
	fd := int(f.Fd())
	for off := int64(0); off < size; {
		start, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole is left
		}
		if err != nil {
			return [][2]int64{{off, size}}
		}
		end, err := unix.Seek(fd, start, unix.SEEK_HOLE)
		if err != nil || end > size {
			end = size
		}
		out = append(out, [2]int64{start, end})
		off = end
	}
	return out
}

// union merges two lists of ranges.
func union(a, b [][2]int64) [][2]int64 {
	all := append(append([][2]int64{}, a...), b...)
	sort.Slice(all, func(i, j int) bool { return all[i][0] < all[j][0] })
	var out [][2]int64
	for _, r := range all {
		if n := len(out); n > 0 && r[0] <= out[n-1][1] {
			out[n-1][1] = max(out[n-1][1], r[1])
			continue
		}
		out = append(out, r)
	}
	return out
}
