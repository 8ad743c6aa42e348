package migrate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/imgbase/imgbase/internal/manifest"
)

// kind is the file type of a node; a change of kind is a change like any other.
type kind uint8

const (
	kindFile kind = iota + 1
	kindDir
	kindSymlink
	kindFIFO
	kindChar
	kindBlock
	kindSocket
)

func (k kind) String() string {
	switch k {
	case kindFile:
		return "file"
	case kindDir:
		return "directory"
	case kindSymlink:
		return "symlink"
	case kindFIFO:
		return "fifo"
	case kindChar:
		return "character device"
	case kindBlock:
		return "block device"
	case kindSocket:
		return "socket"
	}
	return "unknown"
}

// node is one directory entry of one tree, named by the directory descriptor
// that holds it and its single-component name. Everything about it is read
// with *at calls and AT_SYMLINK_NOFOLLOW/O_NOFOLLOW on that descriptor, so a
// symlink is only ever a node of kind symlink, never a way into another place.
type node struct {
	dirfd int
	name  string
	rel   string // path below the root, for messages and the report

	kind     kind
	perm     uint32 // permission bits including setuid, setgid, sticky
	uid, gid uint32
	size     int64
	rdev     uint64
	dev, ino uint64
	nlink    uint64
	atime    unix.Timespec
	mtime    unix.Timespec
	ctime    unix.Timespec
	target   string            // symlinks only
	xattrs   map[string][]byte // every namespace the kernel lets us list
}

// statAt reads the entry name in dirfd without following it. It returns nil,
// nil when the entry does not exist.
func statAt(dirfd int, name, rel string) (*node, error) {
	if dirfd < 0 {
		return nil, nil
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, nil
		}
		return nil, fmt.Errorf("cannot stat %s: %w", rel, err)
	}
	n := &node{
		dirfd: dirfd, name: name, rel: rel,
		perm: st.Mode & 0o7777, uid: st.Uid, gid: st.Gid, size: st.Size,
		rdev: st.Rdev, dev: st.Dev, ino: st.Ino, nlink: uint64(st.Nlink), // uint32 on arm64
		atime: st.Atim, mtime: st.Mtim, ctime: st.Ctim,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		n.kind = kindFile
	case unix.S_IFDIR:
		n.kind = kindDir
	case unix.S_IFLNK:
		n.kind = kindSymlink
		t, err := manifest.ReadlinkAt(dirfd, name)
		if err != nil {
			return nil, fmt.Errorf("cannot read symlink %s: %w", rel, err)
		}
		n.target = t
	case unix.S_IFIFO:
		n.kind = kindFIFO
	case unix.S_IFCHR:
		n.kind = kindChar
	case unix.S_IFBLK:
		n.kind = kindBlock
	case unix.S_IFSOCK:
		n.kind = kindSocket
	default:
		return nil, fmt.Errorf("cannot handle %s: unknown file type %o", rel, st.Mode&unix.S_IFMT)
	}
	x, err := listXattrs(dirfd, name)
	if err != nil {
		return nil, fmt.Errorf("cannot read extended attributes of %s: %w", rel, err)
	}
	n.xattrs = x
	return n, nil
}

// procPath names the entry name inside the directory open as dirfd. The
// kernel has no l*xattrat calls before 6.13; going through the descriptor's
// /proc link pins the directory we already hold, and the l* calls do not
// follow name itself, which is a single component from readdir.
func procPath(dirfd int, name string) string {
	return "/proc/self/fd/" + strconv.Itoa(dirfd) + "/" + name
}

func listXattrs(dirfd int, name string) (map[string][]byte, error) {
	p := procPath(dirfd, name)
	var names []byte
	for size := 1024; ; size *= 4 {
		buf := make([]byte, size)
		n, err := unix.Llistxattr(p, buf)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		names = buf[:n]
		break
	}
	var out map[string][]byte
	for _, attr := range strings.Split(string(names), "\x00") {
		if attr == "" {
			continue
		}
		v, err := getXattr(p, attr)
		if errors.Is(err, unix.ENODATA) {
			continue // removed while we looked
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", attr, err)
		}
		if out == nil {
			out = map[string][]byte{}
		}
		out[attr] = v
	}
	return out, nil
}

func getXattr(path, attr string) ([]byte, error) {
	for size := 256; ; size *= 4 {
		buf := make([]byte, size)
		n, err := unix.Lgetxattr(path, attr, buf)
		if errors.Is(err, unix.ERANGE) {
			if size > 1<<20 {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

// sameMeta compares what the admin can change about a node other than its
// content: type, mode, owner, extended attributes, symlink target, device.
// Times are not compared: a touched but identical file is not a change.
func sameMeta(a, b *node) bool {
	if a.kind != b.kind || a.uid != b.uid || a.gid != b.gid {
		return false
	}
	if a.kind != kindSymlink && a.perm != b.perm {
		return false
	}
	if a.target != b.target {
		return false
	}
	if (a.kind == kindChar || a.kind == kindBlock) && a.rdev != b.rdev {
		return false
	}
	if len(a.xattrs) != len(b.xattrs) {
		return false
	}
	for k, v := range a.xattrs {
		w, ok := b.xattrs[k]
		if !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

// sameNode compares two non-directory nodes completely, content included.
// snap says b's tree is a thin snapshot of a's (the running layer of its
// old base): an entry untouched since the snapshot keeps its inode number
// and change time, which no change can keep (the kernel sets ctime on
// every change of content or metadata), so it needs no reading. A change
// time with no nanoseconds may come from a filesystem that keeps only
// seconds, where a change in the same second would look untouched: such
// entries are compared in full.
func sameNode(a, b *node, snap bool) (bool, error) {
	if a == nil || b == nil {
		return a == b, nil
	}
	if snap && a.ino == b.ino && a.ctime == b.ctime && a.ctime.Nsec != 0 && a.kind == b.kind && a.size == b.size {
		return true, nil
	}
	if !sameMeta(a, b) {
		return false, nil
	}
	if a.kind != kindFile {
		return true, nil
	}
	if a.size != b.size {
		return false, nil
	}
	return sameContent(a, b)
}

// copyBuffers saves two 32 KiB allocations per comparison: /etc holds
// thousands of small files, each compared up to twice.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32*1024); return &b }}

// sameContent compares the bytes of two regular files of the same size.
// Reading both side by side stops at the first difference and costs far
// less than hashing each (no SHA instructions in an emulated CPU).
func sameContent(a, b *node) (bool, error) {
	fa, err := a.open()
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := b.open()
	if err != nil {
		return false, err
	}
	defer fb.Close()
	ba, bb := copyBuffers.Get().(*[]byte), copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(ba)
	defer copyBuffers.Put(bb)
	for {
		na, errA := io.ReadFull(fa, *ba)
		nb, errB := io.ReadFull(fb, *bb)
		endA, endB := atEnd(errA), atEnd(errB)
		if errA != nil && !endA {
			return false, fmt.Errorf("cannot read %s: %w", a.rel, errA)
		}
		if errB != nil && !endB {
			return false, fmt.Errorf("cannot read %s: %w", b.rel, errB)
		}
		if na != nb || !bytes.Equal((*ba)[:na], (*bb)[:nb]) || endA != endB {
			return false, nil
		}
		if endA {
			return true, nil
		}
	}
}

func atEnd(err error) bool { return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) }

// open opens a regular file node for reading, refusing anything that is not
// (or is no longer) a regular file.
func (n *node) open() (*os.File, error) {
	fd, err := unix.Openat(n.dirfd, n.name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("cannot open %s: %w", n.rel, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("cannot open %s: no longer a regular file", n.rel)
	}
	return os.NewFile(uintptr(fd), n.rel), nil
}

func (n *node) readAll() ([]byte, error) {
	f, err := n.open()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", n.rel, err)
	}
	return b, nil
}

// openDir opens a directory node so its children can be read, refusing to
// follow a symlink put in its place.
func (n *node) openDir() (int, error) {
	return openDirAt(n.dirfd, n.name, n.rel)
}

func openDirAt(dirfd int, name, rel string) (int, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("cannot open directory %s: %w", rel, err)
	}
	return fd, nil
}

// readDirNames lists a directory open as fd, sorted, without "." and "..".
func readDirNames(fd int, rel string) ([]string, error) {
	dup, err := unix.Dup(fd)
	if err != nil {
		return nil, fmt.Errorf("cannot list %s: %w", rel, err)
	}
	f := os.NewFile(uintptr(dup), rel)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("cannot list %s: %w", rel, err)
	}
	sort.Strings(names)
	return names, nil
}

// subtreeEqual compares two nodes and, for directories, everything below
// them; snap as for sameNode.
func subtreeEqual(a, b *node, snap bool) (bool, error) {
	if a == nil || b == nil {
		return a == b, nil
	}
	if a.kind != kindDir || b.kind != kindDir {
		return sameNode(a, b, snap)
	}
	if !sameMeta(a, b) {
		return false, nil
	}
	afd, err := a.openDir()
	if err != nil {
		return false, err
	}
	defer unix.Close(afd)
	bfd, err := b.openDir()
	if err != nil {
		return false, err
	}
	defer unix.Close(bfd)
	an, err := readDirNames(afd, a.rel)
	if err != nil {
		return false, err
	}
	bn, err := readDirNames(bfd, b.rel)
	if err != nil {
		return false, err
	}
	if len(an) != len(bn) {
		return false, nil
	}
	for i := range an {
		if an[i] != bn[i] {
			return false, nil
		}
		ac, err := statAt(afd, an[i], a.rel+"/"+an[i])
		if err != nil {
			return false, err
		}
		bc, err := statAt(bfd, bn[i], b.rel+"/"+bn[i])
		if err != nil {
			return false, err
		}
		eq, err := subtreeEqual(ac, bc, snap)
		if err != nil || !eq {
			return false, err
		}
	}
	return true, nil
}
