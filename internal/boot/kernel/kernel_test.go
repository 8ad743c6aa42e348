package kernel

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func touch(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestNewestDebian(t *testing.T) {
	dir := t.TempDir()
	touch(t, dir,
		"vmlinuz-6.1.0-9-amd64", "initrd.img-6.1.0-9-amd64",
		"vmlinuz-6.1.0-18-amd64", "initrd.img-6.1.0-18-amd64",
		"vmlinuz-6.1.0-20-amd64", // no initramfs: not bootable
		"System.map-6.1.0-18-amd64", "config-6.1.0-18-amd64")
	k, err := Newest(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := Kernel{"6.1.0-18-amd64", "vmlinuz-6.1.0-18-amd64", "initrd.img-6.1.0-18-amd64"}
	if k != want {
		t.Fatalf("got %+v", k)
	}
}

func TestNewestFedora(t *testing.T) {
	dir := t.TempDir()
	touch(t, dir,
		"vmlinuz-6.5.6-300.fc39.x86_64", "initramfs-6.5.6-300.fc39.x86_64.img",
		"vmlinuz-6.5.12-300.fc39.x86_64", "initramfs-6.5.12-300.fc39.x86_64.img",
		"vmlinuz-0-rescue-0123456789abcdef", "initramfs-0-rescue-0123456789abcdef.img")
	k, err := Newest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if k.Version != "6.5.12-300.fc39.x86_64" || k.Initrd != "initramfs-6.5.12-300.fc39.x86_64.img" {
		t.Fatalf("got %+v", k)
	}
}

func TestNone(t *testing.T) {
	dir := t.TempDir()
	touch(t, dir, "vmlinuz-6.1.0-18-amd64")
	if _, err := Newest(dir); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
}

func TestCompare(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"6.1.0-18-amd64", "6.1.0-9-amd64", 1},
		{"6.1.0-18-amd64", "6.1.0-18-amd64", 0},
		{"6.1", "6.1.0", -1},
		{"6.1~rc1", "6.1", -1},
		{"6.5.12-300.fc39", "6.5.6-300.fc39", 1},
		{"1.0a", "1.0.1", -1},
		{"010", "10", 0},
	} {
		if got := Compare(c.a, c.b); got != c.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := Compare(c.b, c.a); got != -c.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", c.b, c.a, got, -c.want)
		}
	}
}
