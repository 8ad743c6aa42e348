// Package manifest describes a directory tree entry by entry, like BSD mtree:
// type, mode, owner, extended attributes, link target, hard-link group,
// device number and the sha256 of every regular file's logical content. It is
// what says, exactly, whether two trees are the same: `base --verify` compares
// a base with the manifest recorded when it was installed, and a tree sync
// uses two manifests to decide what it must write.
package manifest

import (
	"bytes"
	"strings"
)

// Type is the file type of an entry.
type Type uint8

const (
	File Type = iota + 1
	Dir
	Symlink
	Char
	Block
	FIFO
	Socket
)

var typeNames = [...]string{File: "file", Dir: "dir", Symlink: "symlink", Char: "char", Block: "block", FIFO: "fifo", Socket: "socket"}

func (t Type) String() string {
	if t >= File && t <= Socket {
		return typeNames[t]
	}
	return "unknown"
}

func parseType(s string) (Type, bool) {
	for t := File; t <= Socket; t++ {
		if typeNames[t] == s {
			return t, true
		}
	}
	return 0, false
}

// Xattr is one extended attribute, with its whole value: labels and
// capabilities are small, and a sync sets them from the manifest.
type Xattr struct {
	Name  string
	Value []byte
}

// Entry is one path of the tree. Path is relative to the root, "." for the
// root itself. Mode holds the permission bits with setuid, setgid and sticky;
// it is 0 for symlinks, whose mode Linux fixes. Link, when set, names the
// first path (in manifest order) of the hard-link group the entry belongs to;
// the first path itself has no Link. Every member carries the group's
// metadata, so the entries of one group are equal but for Path and Link.
type Entry struct {
	Path     string
	Type     Type
	Mode     uint32
	UID, GID uint32
	Size     int64    // regular files
	SHA256   [32]byte // regular files: hash of the logical content, holes read as zeros
	Rdev     uint64   // character and block devices
	Target   string   // symlinks
	Link     string
	Sec      int64 // mtime; compared only on request (see CompareOptions)
	Nsec     int64
	Xattrs   []Xattr // sorted by name
}

// Manifest is the list of entries of a tree in manifest order: the root
// first, then paths compared component by component (see Less), which is the
// order of a depth-first walk that visits names in byte order.
type Manifest struct {
	Entries []Entry
	// unhashed is set by a build with NoHash: the hashes are unknown.
	unhashed bool
}

// Less orders paths component by component: a directory's whole subtree
// comes right after it, before any sibling that sorts after it. Comparing
// with '/' as the lowest byte does that, since a name holds no NUL.
func Less(a, b string) bool {
	if a == b {
		return false
	}
	if a == "." {
		return true
	}
	if b == "." {
		return false
	}
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		ca, cb := a[i], b[i]
		if ca == cb {
			continue
		}
		if ca == '/' {
			return true
		}
		if cb == '/' {
			return false
		}
		return ca < cb
	}
	return len(a) < len(b)
}

// Index maps every path to its entry.
func (m *Manifest) Index() map[string]*Entry {
	idx := make(map[string]*Entry, len(m.Entries))
	for i := range m.Entries {
		idx[m.Entries[i].Path] = &m.Entries[i]
	}
	return idx
}

// Parent is the path of the directory holding p ("." for a top-level name).
func Parent(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return "."
}

// SameMeta reports whether a and b agree on everything but Path, Link and
// the mtime: what one inode carries.
func SameMeta(a, b *Entry) bool {
	return a.Type == b.Type && a.Mode == b.Mode && a.UID == b.UID && a.GID == b.GID &&
		SameContent(a, b) && sameXattrs(a.Xattrs, b.Xattrs)
}

// SameContent reports whether a and b hold the same data: file bytes,
// symlink target or device number, for entries of the same type.
func SameContent(a, b *Entry) bool {
	return a.Type == b.Type && a.Size == b.Size && a.SHA256 == b.SHA256 && a.Target == b.Target && a.Rdev == b.Rdev
}

// SameTime reports whether a and b have the same mtime.
func SameTime(a, b *Entry) bool { return a.Sec == b.Sec && a.Nsec == b.Nsec }

func sameXattrs(a, b []Xattr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}
