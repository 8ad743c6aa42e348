package migrate

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Everything here writes below a directory descriptor of the new root, by a
// single-component name, never following a symlink: a link that the image or
// the admin put in /etc is replaced or moved as a link, never written through.

const asideSuffix = ".imgnew"

func tmpName() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return ".imgbase-tmp-" + hex.EncodeToString(b[:])
}

// exists reports whether name is an entry of dirfd, without following it.
func exists(dirfd int, name string) (bool, error) {
	var st unix.Stat_t
	err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	return err == nil, err
}

// removeAll removes name and, for a directory, everything below it.
func removeAll(dirfd int, name, rel string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("cannot remove %s: %w", rel, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if err := unix.Unlinkat(dirfd, name, 0); err != nil {
			return fmt.Errorf("cannot remove %s: %w", rel, err)
		}
		return nil
	}
	fd, err := openDirAt(dirfd, name, rel)
	if err != nil {
		return fmt.Errorf("cannot remove %s: %w", rel, err)
	}
	names, err := readDirNames(fd, rel)
	if err == nil {
		for _, c := range names {
			if err = removeAll(fd, c, rel+"/"+c); err != nil {
				break
			}
		}
	}
	unix.Close(fd)
	if err != nil {
		return err
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil {
		return fmt.Errorf("cannot remove %s: %w", rel, err)
	}
	return nil
}

// moveAside renames name to name.imgnew (replacing a stale one) and returns
// the new name.
func moveAside(dirfd int, name, rel string) (string, error) {
	aside := name + asideSuffix
	if err := removeAll(dirfd, aside, rel+asideSuffix); err != nil {
		return "", err
	}
	if err := unix.Renameat(dirfd, name, dirfd, aside); err != nil {
		return "", fmt.Errorf("cannot move %s aside: %w", rel, err)
	}
	return aside, nil
}

// meta is what is set on an entry after its content: owner first (chown
// clears setuid bits and security.capability), then mode, then xattrs.
type meta struct {
	kind         kind
	uid, gid     uint32
	perm         uint32
	xattrs       map[string][]byte
	atime, mtime *unix.Timespec
}

// applyMeta sets m on the entry name of dirfd. The entry is one we created or
// one whose kind we just checked; fchownat and the proc path do not follow a
// final symlink, and fchmodat is not called on symlinks.
func applyMeta(dirfd int, name, rel string, m meta) error {
	if err := unix.Fchownat(dirfd, name, int(m.uid), int(m.gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("cannot set owner of %s: %w", rel, err)
	}
	if m.kind != kindSymlink {
		if err := unix.Fchmodat(dirfd, name, m.perm, 0); err != nil {
			return fmt.Errorf("cannot set mode of %s: %w", rel, err)
		}
	}
	if err := setXattrs(dirfd, name, m.xattrs); err != nil {
		return fmt.Errorf("cannot set extended attributes of %s: %w", rel, err)
	}
	if m.atime != nil && m.mtime != nil {
		ts := []unix.Timespec{*m.atime, *m.mtime}
		if err := unix.UtimesNanoAt(dirfd, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("cannot set times of %s: %w", rel, err)
		}
	}
	return nil
}

// setXattrs makes the entry's xattrs exactly want: a new entry may have been
// given a default ACL or a label on creation that the source did not have.
func setXattrs(dirfd int, name string, want map[string][]byte) error {
	have, err := listXattrs(dirfd, name)
	if err != nil {
		return err
	}
	p := procPath(dirfd, name)
	for k := range have {
		if _, ok := want[k]; ok {
			continue
		}
		if err := unix.Lremovexattr(p, k); err != nil {
			// A label the kernel assigned may not be removable; the
			// source simply had none, which is not worth failing for.
			if strings.HasPrefix(k, "security.") {
				continue
			}
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	for k, v := range want {
		if cur, ok := have[k]; ok && string(cur) == string(v) {
			continue
		}
		if err := unix.Lsetxattr(p, k, v, 0); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	return nil
}

// writeFileAt atomically replaces name in dirfd with data and metadata m.
func writeFileAt(dirfd int, name, rel string, data []byte, m meta) error {
	return replaceAt(dirfd, name, rel, m, func(tmp string) error {
		return createFile(dirfd, tmp, rel, func(f *os.File) error {
			_, err := f.Write(data)
			return err
		})
	})
}

// createFile creates tmp exclusively, fills it and fsyncs it.
func createFile(dirfd int, tmp, rel string, fill func(*os.File) error) error {
	fd, err := unix.Openat(dirfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("cannot create %s: %w", rel, err)
	}
	f := os.NewFile(uintptr(fd), rel)
	if err := fill(f); err != nil {
		f.Close()
		return fmt.Errorf("cannot write %s: %w", rel, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("cannot write %s: %w", rel, err)
	}
	return f.Close()
}

// replaceAt creates a temporary entry with create, gives it m, and renames it
// over name, so name is either the old or the new entry, never half of one.
func replaceAt(dirfd int, name, rel string, m meta, create func(tmp string) error) error {
	tmp := tmpName()
	if err := create(tmp); err != nil {
		unix.Unlinkat(dirfd, tmp, 0)
		return err
	}
	if err := applyMeta(dirfd, tmp, rel, m); err != nil {
		unix.Unlinkat(dirfd, tmp, 0)
		return err
	}
	if err := unix.Renameat(dirfd, tmp, dirfd, name); err != nil {
		unix.Unlinkat(dirfd, tmp, 0)
		return fmt.Errorf("cannot replace %s: %w", rel, err)
	}
	return nil
}

// copyContent copies a regular file node into f.
func copyContent(src *node, f *os.File) error {
	in, err := src.open()
	if err != nil {
		return err
	}
	defer in.Close()
	_, err = io.Copy(f, in)
	return err
}

// linkAt makes name in dirfd a hard link to an entry written earlier
// (found again below the new root, without following symlinks).
func linkAt(rootfd int, earlier string, dirfd int, name, rel string) error {
	parts := strings.Split(earlier, "/")
	pfd, err := unix.Dup(rootfd)
	if err != nil {
		return fmt.Errorf("cannot link %s: %w", rel, err)
	}
	for _, c := range parts[:len(parts)-1] {
		next, err := openDirAt(pfd, c, earlier)
		unix.Close(pfd)
		if err != nil {
			return fmt.Errorf("cannot link %s: %w", rel, err)
		}
		pfd = next
	}
	defer unix.Close(pfd)
	tmp := tmpName()
	if err := unix.Linkat(pfd, parts[len(parts)-1], dirfd, tmp, 0); err != nil {
		return fmt.Errorf("cannot link %s to %s: %w", rel, earlier, err)
	}
	err = unix.Renameat(dirfd, tmp, dirfd, name)
	// rename between two links of one inode succeeds without removing tmp.
	unix.Unlinkat(dirfd, tmp, 0)
	if err != nil {
		return fmt.Errorf("cannot link %s to %s: %w", rel, earlier, err)
	}
	return nil
}
