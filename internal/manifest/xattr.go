package manifest

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ProcPath names the entry name of the directory open as dirfd ("" for the
// directory itself). Linux before 6.13 has no *xattrat calls; the l* calls on
// this path resolve only the descriptor we hold and then name, without
// following name, which is a single component.
func ProcPath(dirfd int, name string) string {
	p := "/proc/self/fd/" + strconv.Itoa(dirfd)
	if name == "" {
		return p
	}
	return p + "/" + name
}

// ReadXattrs reads every extended attribute the kernel lists for name in
// dirfd ("" for dirfd itself), sorted by name; nil when there are none or the
// filesystem has none.
func ReadXattrs(dirfd int, name string) ([]Xattr, error) {
	var list func([]byte) (int, error)
	var get func(string, []byte) (int, error)
	if name == "" {
		list = func(b []byte) (int, error) { return unix.Flistxattr(dirfd, b) }
		get = func(a string, b []byte) (int, error) { return unix.Fgetxattr(dirfd, a, b) }
	} else {
		p := ProcPath(dirfd, name)
		list = func(b []byte) (int, error) { return unix.Llistxattr(p, b) }
		get = func(a string, b []byte) (int, error) { return unix.Lgetxattr(p, a, b) }
	}
	var names []byte
	for size := 1024; ; size *= 4 {
		buf := make([]byte, size)
		n, err := list(buf)
		if errors.Is(err, unix.ERANGE) && size < 1<<24 {
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
	if len(names) == 0 {
		return nil, nil
	}
	var out []Xattr
	for _, attr := range strings.Split(string(names), "\x00") {
		if attr == "" {
			continue
		}
		v, err := getXattr(get, attr)
		if errors.Is(err, unix.ENODATA) {
			continue // removed while we looked
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", attr, err)
		}
		out = append(out, Xattr{Name: attr, Value: v})
	}
	slices.SortFunc(out, func(a, b Xattr) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func getXattr(get func(string, []byte) (int, error), attr string) ([]byte, error) {
	for size := 256; ; size *= 4 {
		buf := make([]byte, size)
		n, err := get(attr, buf)
		if errors.Is(err, unix.ERANGE) && size < 1<<20 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}
