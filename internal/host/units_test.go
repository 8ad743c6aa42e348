package host

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
			// The kernel hook runs the same imgbase as the units.
			hook, err := os.ReadFile(filepath.Join(mnt, "etc/kernel/postinst.d/zz-imgbase"))
			if tc.wantExec == "" {
				if err == nil {
					t.Errorf("a kernel hook written into an image that ships the package")
				}
			} else {
				bin := strings.Fields(strings.TrimPrefix(tc.wantExec, "ExecStart="))[0]
				if !strings.Contains(string(hook), "exec "+bin+" boot --sync-kernel=") || strings.Contains(string(hook), "/usr/sbin/imgbase") != (bin == "/usr/sbin/imgbase") {
					t.Errorf("the kernel hook does not run %s:\n%s", bin, hook)
				}
				if st, err := os.Stat(filepath.Join(mnt, "etc/grub.d/15_imgbase")); err != nil || st.Mode().Perm() != 0o755 {
					t.Errorf("/etc/grub.d/15_imgbase: %v %v", st, err)
				}
			}
			_, err = os.Stat(filepath.Join(mnt, "usr/local/sbin/imgbase"))
			if (err == nil) != tc.wantCopy {
				t.Errorf("copy of imgbase in /usr/local/sbin: %v, want %v", err == nil, tc.wantCopy)
			}
		})
	}
}
