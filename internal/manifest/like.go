package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Like is a tree that the one Build describes is expected to share most of
// its files with: the predecessor of a new base. A regular file of the
// described tree whose path holds a regular file of the same size in Like
// is compared with it byte for byte; when the two are equal, the file takes
// Like's hash instead of being hashed. Where the CPU is slow (a guest under
// emulation) hashing is the whole cost of describing a tree, and reading a
// second copy costs a fraction of it; an update changes few files.
//
// Manifest describes Like's tree. When it was built with NoHash, Build
// hashes each compared file as it reads it and fills the hash into the
// entry of Like found equal, so that both manifests say which files are
// the same; an entry of Like left unhashed then differs from every file.
// Like's manifest is trusted to describe its tree, as a tree sync trusts
// the destination's: take it from the tree's own record or a build.
type Like struct {
	Root     string
	Manifest *Manifest
}

// likeWalk is the walk's view of Like: the index of its manifest and
// whether that manifest has hashes. (The walk carries the descriptor of
// Like's directory beside each directory it walks.)
type likeWalk struct {
	idx    map[string]*Entry
	hashed bool
}

// openLike opens the regular file name in Like's directory likefd for a
// comparison with e, or returns nil when it cannot be compared: missing,
// or of another type or size in Like's manifest or its tree.
func (l *likeWalk) openLike(likefd int, name string, e *Entry) (*os.File, *Entry) {
	if l == nil || likefd < 0 {
		return nil, nil
	}
	le := l.idx[e.Path]
	if le == nil || le.Type != File || le.Size != e.Size {
		return nil, nil
	}
	var st unix.Stat_t
	if unix.Fstatat(likefd, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size != e.Size {
		return nil, nil
	}
	f, err := openFile(likefd, name, e.Path, &st)
	if err != nil {
		return nil, nil
	}
	return f, le
}

// openLikeDir opens directory name of Like's directory likefd, or returns
// -1 when Like has no directory there.
func openLikeDir(likefd int, name string) int {
	if likefd < 0 {
		return -1
	}
	fd, err := unix.Openat(likefd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	return fd
}

// describeLike sets e.SHA256 for f, which has a counterpart like (entry le)
// of the same size in Like: le's hash when the bytes are equal and le is
// hashed, else f's own hash, filled into le too when the bytes are equal.
func describeLike(h hash.Hash, buf, lbuf []byte, f, like *os.File, e, le *Entry, hashed bool) error {
	h.Reset()
	var sum hash.Hash
	if !hashed {
		sum = h // hashed in the same pass: every byte of f is needed anyway
	}
	same, err := sameBytes(f, like, e.Size, buf, lbuf, sum)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", Escape(e.Path), err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Size != e.Size {
		return fmt.Errorf("cannot read %s: it changed while being read", Escape(e.Path))
	}
	switch {
	case same && hashed:
		e.SHA256 = le.SHA256
	case hashed:
		return hashInto(h, buf, f, e)
	default:
		h.Sum(e.SHA256[:0])
		if same {
			le.SHA256 = e.SHA256
		}
	}
	return nil
}

// sameBytes reports whether the first n bytes of f and g are equal. With h,
// every byte of f goes into h, also after a difference is found; without,
// it stops at the first difference.
func sameBytes(f, g *os.File, n int64, buf, gbuf []byte, h hash.Hash) (bool, error) {
	same := true
	var off int64
	for off < n {
		k := min(int64(len(buf)), n-off)
		if _, err := f.ReadAt(buf[:k], off); err != nil {
			return false, shortRead(err)
		}
		if h != nil {
			h.Write(buf[:k])
		}
		if same {
			if _, err := g.ReadAt(gbuf[:k], off); err != nil {
				same = false // Like changed or is unreadable: not the same
			} else {
				same = bytes.Equal(buf[:k], gbuf[:k])
			}
		}
		if !same && h == nil {
			return false, nil
		}
		off += k
	}
	return same, nil
}

func shortRead(err error) error {
	if errors.Is(err, io.EOF) {
		return errors.New("it changed while being read")
	}
	return err
}
