package host

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbase/imgbase/internal/boot"
)

func TestInstallUnitsRespectsThePackage(t *testing.T) {
	self := filepath.Join(t.TempDir(), "imgbase")
	if err := os.WriteFile(self, []byte("#!imgbase\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	unit := "etc/systemd/system/imgbase-boot-success.service"
	wants := "etc/systemd/system/multi-user.target.wants/imgbase-recover.service"
	for _, tc := range []struct {
		name     string
		image    []string // files the layer's image has
		wantExec string   // "" when imgbase must write no unit
		wantCopy bool
	}{
		{"bare image", nil, "ExecStart=/usr/local/sbin/imgbase boot --mark-good", true},
		{"image with the binary only", []string{"usr/bin/imgbase"}, "ExecStart=/usr/bin/imgbase boot --mark-good", false},
		{"image with the package", []string{"usr/sbin/imgbase",
			"usr/lib/systemd/system/imgbase-boot-success.service",
			"usr/lib/systemd/system/imgbase-recover.service"}, "", false},
		{"image with the package, no merged /usr", []string{"usr/sbin/imgbase",
			"lib/systemd/system/imgbase-boot-success.service",
			"lib/systemd/system/imgbase-recover.service"}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "running", 254, 5)
			f.h.Self = self
			mnt := t.TempDir()
			for _, p := range tc.image {
				os.MkdirAll(filepath.Join(mnt, filepath.Dir(p)), 0o755)
				if err := os.WriteFile(filepath.Join(mnt, p), []byte("x"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := f.h.installUnits(mnt); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(mnt, unit))
			if tc.wantExec == "" {
				if err == nil {
					t.Errorf("%s written into an image that ships the package", unit)
				}
			} else if !strings.Contains(string(got), "\n"+tc.wantExec+"\n") {
				t.Errorf("%s:\n%s\nwant the line %q", unit, got, tc.wantExec)
			}
			if _, err := os.Lstat(filepath.Join(mnt, wants)); (err == nil) != (tc.wantExec != "") {
				t.Errorf("%s exists: %v, want %v", wants, err == nil, tc.wantExec != "")
			}
			// The package's kernel and grub.d hooks are never copied: they
			// would stand where its conffiles go (dpkg would prompt when the
			// package is installed there later).
			for _, p := range boot.HookPaths() {
				if _, err := os.Lstat(filepath.Join(mnt, p)); err == nil {
					t.Errorf("%s written into a layer", p)
				}
			}
			_, err = os.Stat(filepath.Join(mnt, "usr/local/sbin/imgbase"))
			if (err == nil) != tc.wantCopy {
				t.Errorf("copy of imgbase in /usr/local/sbin: %v, want %v", err == nil, tc.wantCopy)
			}
		})
	}
}
