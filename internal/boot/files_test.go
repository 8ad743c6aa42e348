package boot

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCopyFileLinksAnIdenticalTwin(t *testing.T) {
	boot := t.TempDir()
	src := filepath.Join(t.TempDir(), "vmlinuz-1")
	os.WriteFile(src, []byte("kernel bytes"), 0o644)
	for _, d := range []string{"L+1", "L+2", "M+1"} {
		os.MkdirAll(filepath.Join(boot, d), 0o755)
	}
	if err := (Disk{}).CopyFile(filepath.Join(boot, "L+1/vmlinuz-1"), src); err != nil {
		t.Fatal(err)
	}
	if err := (Disk{}).CopyFile(filepath.Join(boot, "L+2/vmlinuz-1"), src); err != nil {
		t.Fatal(err)
	}
	a, _ := os.Stat(filepath.Join(boot, "L+1/vmlinuz-1"))
	b, _ := os.Stat(filepath.Join(boot, "L+2/vmlinuz-1"))
	if !os.SameFile(a, b) {
		t.Error("the identical kernel was copied, not linked")
	}
	// Different content with the same name is copied.
	os.WriteFile(src, []byte("other kernel"), 0o644)
	if err := (Disk{}).CopyFile(filepath.Join(boot, "M+1/vmlinuz-1"), src); err != nil {
		t.Fatal(err)
	}
	c, _ := os.Stat(filepath.Join(boot, "M+1/vmlinuz-1"))
	if os.SameFile(a, c) {
		t.Error("a different kernel was linked")
	}
	if data, _ := os.ReadFile(filepath.Join(boot, "M+1/vmlinuz-1")); string(data) != "other kernel" {
		t.Errorf("content %q", data)
	}
	// Removing one link leaves the other's content.
	os.Remove(filepath.Join(boot, "L+1/vmlinuz-1"))
	if data, _ := os.ReadFile(filepath.Join(boot, "L+2/vmlinuz-1")); string(data) != "kernel bytes" {
		t.Errorf("after removing its twin: %q", data)
	}
}
