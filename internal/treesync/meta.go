package treesync

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/imgbase/imgbase/internal/manifest"
)

// target is an entry of the destination whose metadata is set, reached
// without following a symlink: a directory by its open descriptor, anything
// else by its name in an open directory.
type target interface {
	stat(*unix.Stat_t) error
	chown(uid, gid int) error
	chmod(mode uint32) error
	xattrs() ([]manifest.Xattr, error)
	setXattr(name string, v []byte) error
	removeXattr(name string) error
	setMtime(sec, nsec int64) error
}

func mtimes(sec, nsec int64) []unix.Timespec {
	return []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Sec: sec, Nsec: nsec}}
}

type dirTarget struct{ fd int }

func (t dirTarget) stat(st *unix.Stat_t) error        { return unix.Fstat(t.fd, st) }
func (t dirTarget) chown(uid, gid int) error          { return unix.Fchown(t.fd, uid, gid) }
func (t dirTarget) chmod(mode uint32) error           { return unix.Fchmod(t.fd, mode) }
func (t dirTarget) xattrs() ([]manifest.Xattr, error) { return manifest.ReadXattrs(t.fd, "") }
func (t dirTarget) setXattr(n string, v []byte) error { return unix.Fsetxattr(t.fd, n, v, 0) }
func (t dirTarget) removeXattr(n string) error        { return unix.Fremovexattr(t.fd, n) }
func (t dirTarget) setMtime(sec, nsec int64) error {
	return unix.UtimesNanoAt(t.fd, "", mtimes(sec, nsec), unix.AT_EMPTY_PATH)
}

type atTarget struct {
	dirfd int
	name  string
}

func (t atTarget) stat(st *unix.Stat_t) error {
	return unix.Fstatat(t.dirfd, t.name, st, unix.AT_SYMLINK_NOFOLLOW)
}
func (t atTarget) chown(uid, gid int) error {
	return unix.Fchownat(t.dirfd, t.name, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
}

// chmod has no no-follow form before fchmodat2: open the entry itself with
// O_PATH|O_NOFOLLOW, check it is no symlink, and change the inode that
// descriptor holds.
func (t atTarget) chmod(mode uint32) error {
	fd, err := unix.Openat(t.dirfd, t.name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return errors.New("is a symlink")
	}
	return unix.Fchmodat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), mode, 0)
}
func (t atTarget) xattrs() ([]manifest.Xattr, error) { return manifest.ReadXattrs(t.dirfd, t.name) }
func (t atTarget) setXattr(n string, v []byte) error {
	return unix.Lsetxattr(manifest.ProcPath(t.dirfd, t.name), n, v, 0)
}
func (t atTarget) removeXattr(n string) error {
	return unix.Lremovexattr(manifest.ProcPath(t.dirfd, t.name), n)
}
func (t atTarget) setMtime(sec, nsec int64) error {
	return unix.UtimesNanoAt(t.dirfd, t.name, mtimes(sec, nsec), unix.AT_SYMLINK_NOFOLLOW)
}

var types = map[uint32]manifest.Type{
	unix.S_IFREG: manifest.File, unix.S_IFDIR: manifest.Dir, unix.S_IFLNK: manifest.Symlink,
	unix.S_IFCHR: manifest.Char, unix.S_IFBLK: manifest.Block, unix.S_IFIFO: manifest.FIFO, unix.S_IFSOCK: manifest.Socket,
}

// applyMeta makes t's owner, mode, xattrs and mtime those of want, writing
// only what differs, in the order that keeps each: owner first (chown clears
// setuid/setgid and security.capability), then mode, then xattrs, then the
// mtime, which none of the others touch.
func applyMeta(t target, want *manifest.Entry) error {
	var st unix.Stat_t
	if err := t.stat(&st); err != nil {
		return err
	}
	if got := types[st.Mode&unix.S_IFMT]; got != want.Type {
		return fmt.Errorf("is a %s, not a %s", got, want.Type)
	}
	chowned := false
	if st.Uid != want.UID || st.Gid != want.GID {
		if err := t.chown(int(want.UID), int(want.GID)); err != nil {
			return err
		}
		chowned = true
	}
	if want.Type != manifest.Symlink && (chowned || st.Mode&0o7777 != want.Mode) {
		if err := t.chmod(want.Mode); err != nil {
			return err
		}
	}
	have, err := t.xattrs()
	if err != nil {
		return err
	}
	for _, x := range have {
		if !slices.ContainsFunc(want.Xattrs, func(w manifest.Xattr) bool { return w.Name == x.Name }) {
			if err := t.removeXattr(x.Name); err != nil {
				return fmt.Errorf("cannot remove xattr %s: %w", manifest.Escape(x.Name), err)
			}
		}
	}
	for _, w := range want.Xattrs {
		i := slices.IndexFunc(have, func(x manifest.Xattr) bool { return x.Name == w.Name })
		if i >= 0 && bytes.Equal(have[i].Value, w.Value) {
			continue
		}
		if err := t.setXattr(w.Name, w.Value); err != nil {
			return fmt.Errorf("cannot set xattr %s: %w", manifest.Escape(w.Name), err)
		}
	}
	if st.Mtim.Sec != want.Sec || st.Mtim.Nsec != want.Nsec {
		if err := t.setMtime(want.Sec, want.Nsec); err != nil {
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
	f := os.NewFile(uintptr(fd), ".")
	defer f.Close()
	return f.Readdirnames(-1)
}
