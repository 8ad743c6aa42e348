package efivar

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestSetGetDelete(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	if _, err := s.Get("LoaderEntryOneShot"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("unset: %v", err)
	}
	if err := s.Set("LoaderEntryOneShot", "Base-2-0_1.conf"); err != nil {
		t.Fatal(err)
	}
	// What bootctl writes: attributes NV|BS|RT, then UTF-16LE with a NUL.
	b, _ := os.ReadFile(filepath.Join(s.Dir, "LoaderEntryOneShot-"+LoaderGUID))
	want := []byte{7, 0, 0, 0}
	for _, c := range "Base-2-0_1.conf" {
		want = append(want, byte(c), 0)
	}
	want = append(want, 0, 0)
	if !bytes.Equal(b, want) {
		t.Fatalf("file:\n% x\nwant\n% x", b, want)
	}
	// A shorter value replaces it whole.
	if err := s.Set("LoaderEntryOneShot", "A.conf"); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get("LoaderEntryOneShot"); err != nil || v != "A.conf" {
		t.Fatalf("get: %q %v", v, err)
	}
	if err := s.Delete("LoaderEntryOneShot"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("LoaderEntryOneShot"); err != nil {
		t.Fatalf("deleting an unset variable: %v", err)
	}
	if _, err := s.Get("LoaderEntryOneShot"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("after delete: %v", err)
	}
}

// efivarfs marks variables immutable; replacing one clears the flag first.
func TestReplacesImmutable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: chattr +i")
	}
	dir, err := os.MkdirTemp("/var/tmp", "efivar-") // tmpfs may lack the flag
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("chattr", "-R", "-i", dir).Run(); os.RemoveAll(dir) })
	s := Store{Dir: dir}
	if err := s.Set("LoaderEntryOneShot", "old.conf"); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chattr", "+i", s.path("LoaderEntryOneShot")).CombinedOutput(); err != nil {
		t.Skipf("no immutable flag here: %v %s", err, out)
	}
	if err := s.Set("LoaderEntryOneShot", "new.conf"); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Get("LoaderEntryOneShot"); v != "new.conf" {
		t.Fatalf("got %q", v)
	}
}

func TestNoEfivarfs(t *testing.T) {
	s := Store{Dir: filepath.Join(t.TempDir(), "missing")}
	err := s.Set("LoaderEntryOneShot", "x.conf")
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("booted by UEFI")) {
		t.Fatalf("no efivarfs: %v", err)
	}
}
