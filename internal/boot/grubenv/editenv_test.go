package grubenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// These tests hold the format against GRUB's own grub-editenv (package
// grub-common), when it is installed.
func editenv(t *testing.T, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("grub-editenv")
	if err != nil {
		t.Skip("grub-editenv not installed (apt-get install grub-common)")
	}
	out, err := exec.Command(path, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("grub-editenv %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func TestGrubEditenvReadsOurs(t *testing.T) {
	p := filepath.Join(t.TempDir(), "grubenv")
	e := New()
	e.Set("saved_entry", "Base-1-0+1")
	e.Set("boot_status", "try")
	e.Set("odd", `a\b`)
	data, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p, data, 0o644)
	got := editenv(t, p, "list")
	if got != "saved_entry=Base-1-0+1\nboot_status=try\nodd=a\\b\n" {
		t.Fatalf("grub-editenv list:\n%s", got)
	}
	// GRUB edits it in place and it stays ours to read.
	editenv(t, p, "set", "next_entry=Base-2-0+1")
	editenv(t, p, "unset", "boot_status")
	data, _ = os.ReadFile(p)
	if len(data) != Size {
		t.Fatalf("%d bytes after grub-editenv", len(data))
	}
	back, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(back.Keys(), ",") != "saved_entry,odd,next_entry" || back.Get("odd") != `a\b` || back.Get("next_entry") != "Base-2-0+1" {
		t.Fatalf("after grub-editenv: %v %q", back.Keys(), back.Get("odd"))
	}
}

func TestWeReadGrubEditenvCreate(t *testing.T) {
	p := filepath.Join(t.TempDir(), "grubenv")
	editenv(t, p, "create")
	editenv(t, p, "set", "saved_entry=Base-1-0+1")
	e, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(e.Keys(), ",") != "saved_entry" || e.Get("saved_entry") != "Base-1-0+1" {
		t.Fatalf("read %v", e.Keys())
	}
}
