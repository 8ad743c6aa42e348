package lvm

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReadAutoextend(t *testing.T) {
	root := t.TempDir()
	if a := ReadAutoextend(root); a.Enabled() || a.Threshold != 100 {
		t.Errorf("no configuration: %+v, want lvm2's default (off)", a)
	}
	dir := filepath.Join(root, "etc/lvm")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "lvm.conf"), []byte(`# thin_pool_autoextend_threshold = 10
config {
	thin_pool_autoextend_threshold = 5
}
activation {
	# thin_pool_autoextend_threshold = 50
	thin_pool_autoextend_threshold = 80   # trailing comment
	thin_pool_autoextend_percent=25
	nested {
		thin_pool_autoextend_percent = 99
	}
}
`), 0o644)
	if a := ReadAutoextend(root); a != (Autoextend{Threshold: 80, Percent: 25}) || !a.Enabled() {
		t.Errorf("lvm.conf: %+v, want threshold 80, percent 25", a)
	}
	os.WriteFile(filepath.Join(dir, "lvmlocal.conf"), []byte("activation {\n thin_pool_autoextend_threshold = 100\n}\n"), 0o644)
	if a := ReadAutoextend(root); a.Enabled() || a.Percent != 25 {
		t.Errorf("lvmlocal.conf turning it off: %+v", a)
	}
}
