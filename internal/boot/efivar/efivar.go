// Package efivar reads and writes the EFI variables of the Boot Loader
// Interface (systemd-boot's LoaderEntryOneShot, LoaderEntrySelected, …)
// through efivarfs, as bootctl does. imgbase runs from whichever layer is
// booted, and the image a layer was made from need not ship bootctl.
//
// An efivarfs file is the variable's 4-byte attributes followed by its
// data; a variable is written by a single write of both, and the kernel
// may mark the file immutable, which must be cleared before it is
// replaced or removed.
package efivar

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"unicode/utf16"

	"golang.org/x/sys/unix"
)

// LoaderGUID is the vendor GUID of the Boot Loader Interface's variables.
const LoaderGUID = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"

// Dir is where efivarfs is mounted.
const Dir = "/sys/firmware/efi/efivars"

// immutableFL is FS_IMMUTABLE_FL of linux/fs.h (x/sys/unix lacks it).
const immutableFL = 0x10

// attrs: non-volatile, seen by the boot services and at runtime, as
// bootctl writes them.
const attrs = 0x1 | 0x2 | 0x4

// Store is the Boot Loader Interface's variables in an efivarfs at Dir.
type Store struct{ Dir string }

func (s Store) path(name string) string { return filepath.Join(s.Dir, name+"-"+LoaderGUID) }

// Get returns a string variable, or an error matching fs.ErrNotExist when
// it is not set.
func (s Store) Get(name string) (string, error) {
	b, err := os.ReadFile(s.path(name))
	if err != nil {
		return "", fmt.Errorf("cannot read EFI variable %s: %w", name, err)
	}
	if len(b) < 4 || (len(b)-4)%2 != 0 {
		return "", fmt.Errorf("cannot read EFI variable %s: %d bytes is not a UTF-16 string", name, len(b))
	}
	u := make([]uint16, 0, (len(b)-4)/2)
	for i := 4; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u)), nil
}

// Set writes value as a NUL-terminated UTF-16LE string, replacing the
// variable when it is set.
func (s Store) Set(name, value string) error {
	if err := s.Delete(name); err != nil {
		return err
	}
	u := utf16.Encode([]rune(value))
	b := make([]byte, 4, 4+2*len(u)+2)
	binary.LittleEndian.PutUint32(b, attrs)
	for _, c := range append(u, 0) {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	f, err := os.OpenFile(s.path(name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return s.wrap("write", name, err)
	}
	// One write: efivarfs takes the attributes and data together.
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return s.wrap("write", name, err)
	}
	return nil
}

// Delete removes the variable; one that is not set is fine.
func (s Store) Delete(name string) error {
	p := s.path(name)
	if err := mutable(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return s.wrap("remove", name, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return s.wrap("remove", name, err)
	}
	return nil
}

func (s Store) wrap(verb, name string, err error) error {
	if _, serr := os.Stat(s.Dir); serr != nil {
		return fmt.Errorf("cannot %s EFI variable %s: no efivarfs at %s (was the host booted by UEFI?): %w", verb, name, s.Dir, err)
	}
	return fmt.Errorf("cannot %s EFI variable %s: %w", verb, name, err)
}

// mutable clears the immutable flag efivarfs may set on p. A filesystem
// without flags (a test's directory) has nothing to clear.
func mutable(p string) error {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(fd)
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) {
			return nil
		}
		return &fs.PathError{Op: "get flags", Path: p, Err: err}
	}
	if flags&immutableFL == 0 {
		return nil
	}
	if err := unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(flags&^immutableFL)); err != nil {
		return &fs.PathError{Op: "clear the immutable flag", Path: p, Err: err}
	}
	return nil
}
