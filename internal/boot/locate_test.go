package boot

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// fakeMounts is a mount table: mount point -> what is mounted there.
func fakeMounts(m map[string]Mount) Mounts {
	return func(dir string) (Mount, bool) {
		mt, ok := m[dir]
		return mt, ok
	}
}

var (
	espMount  = Mount{FSType: "vfat", PartType: ESPType}
	xbootMnt  = Mount{FSType: "vfat", PartType: XBOOTLDRType}
	ext4Mount = Mount{FSType: "ext4", PartType: "0fc63daf-8483-4772-8e79-3d69d8477de4"}
)

func TestLocate(t *testing.T) {
	for _, c := range []struct {
		name      string
		files     []string // relative to the root
		mounts    map[string]Mount
		nilMounts bool
		want      Places // relative to the root
	}{
		{"ESP at /boot", []string{"boot/loader/loader.conf"},
			map[string]Mount{"/boot": espMount},
			false, Places{Loader: SystemdBoot, Boot: "boot", ESP: "boot"}},
		{"ESP at /boot/efi, /boot ext4", []string{"boot/efi/loader/loader.conf", "boot/vmlinuz-6.1.0-18-amd64"},
			map[string]Mount{"/boot": ext4Mount, "/boot/efi": espMount},
			false, Places{Loader: SystemdBoot, Boot: "boot/efi", ESP: "boot/efi"}},
		{"ESP at /boot/efi, /boot on the root", []string{"boot/efi/loader/loader.conf"},
			map[string]Mount{"/boot/efi": espMount},
			false, Places{Loader: SystemdBoot, Boot: "boot/efi", ESP: "boot/efi"}},
		{"ESP at /efi", []string{"efi/loader/loader.conf"},
			map[string]Mount{"/efi": espMount},
			false, Places{Loader: SystemdBoot, Boot: "efi", ESP: "efi"}},
		{"ESP at /efi, XBOOTLDR at /boot", []string{"efi/loader/loader.conf", "efi/EFI/systemd/systemd-bootx64.efi"},
			map[string]Mount{"/efi": espMount, "/boot": xbootMnt},
			false, Places{Loader: SystemdBoot, Boot: "boot", ESP: "efi"}},
		// bootctl's order: /boot, an XBOOTLDR partition, is not the ESP.
		{"ESP at /boot/efi, XBOOTLDR at /boot", []string{"boot/efi/loader/loader.conf", "boot/loader/entries/x.conf"},
			map[string]Mount{"/boot": xbootMnt, "/boot/efi": espMount},
			false, Places{Loader: SystemdBoot, Boot: "boot", ESP: "boot/efi"}},
		// An ext4 /boot is never XBOOTLDR, even with entries in it.
		{"ESP at /efi, /boot ext4", []string{"efi/loader/loader.conf", "boot/loader/entries/x.conf"},
			map[string]Mount{"/efi": espMount, "/boot": ext4Mount},
			false, Places{Loader: SystemdBoot, Boot: "efi", ESP: "efi"}},
		{"partition type unknown: a FAT mount with EFI/", []string{"boot/efi/EFI/systemd/systemd-bootx64.efi"},
			map[string]Mount{"/boot/efi": {FSType: "vfat"}},
			false, Places{Loader: SystemdBoot, Boot: "boot/efi", ESP: "boot/efi"}},
		{"partition type unknown: an empty FAT mount is not an ESP", []string{"boot/efi/README"},
			map[string]Mount{"/boot/efi": {FSType: "vfat"}},
			false, Places{Loader: LoaderNone, Boot: "boot"}},
		// Files left in a directory where nothing is mounted are not read.
		{"ESP not mounted", []string{"boot/efi/loader/loader.conf"},
			map[string]Mount{"/boot": ext4Mount},
			false, Places{Loader: LoaderNone, Boot: "boot"}},
		{"an ESP without systemd-boot", []string{"boot/efi/EFI/debian/shimx64.efi"},
			map[string]Mount{"/boot/efi": espMount},
			false, Places{Loader: LoaderNone, Boot: "boot"}},
		// Debian's GRUB on UEFI: the ESP holds a stub, /boot/grub the menu.
		{"GRUB on UEFI", []string{"boot/efi/EFI/debian/grubx64.efi", "boot/grub/grub.cfg"},
			map[string]Mount{"/boot": ext4Mount, "/boot/efi": espMount},
			false, Places{Loader: GrubMenu, GrubDir: "boot/grub", Boot: "boot"}},
		{"no mount table: loader.conf at /boot/efi", []string{"boot/efi/loader/loader.conf"},
			nil, true, Places{Loader: SystemdBoot, Boot: "boot/efi", ESP: "boot/efi"}},
		{"no mount table: loader.conf at /boot", []string{"boot/loader/loader.conf"},
			nil, true, Places{Loader: SystemdBoot, Boot: "boot", ESP: "boot"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			for _, p := range c.files {
				data := "x\n"
				if strings.HasSuffix(p, "grub.cfg") {
					data = debianGrubCfg
				}
				writeFile(t, filepath.Join(root, p), data)
			}
			var mounts Mounts
			if !c.nilMounts {
				mounts = fakeMounts(c.mounts)
			}
			got := Locate(root, mounts)
			abs := func(p string) string {
				if p == "" {
					return ""
				}
				return filepath.Join(root, p)
			}
			want := Places{Loader: c.want.Loader, GrubDir: abs(c.want.GrubDir), Boot: abs(c.want.Boot), ESP: abs(c.want.ESP)}
			if got != want {
				t.Fatalf("got %+v\nwant %+v", got, want)
			}
		})
	}
}

// In each layout, the entry, the kernel and the initramfs land together
// where systemd-boot reads them (XBOOTLDR, else the ESP), with paths
// relative to that partition; loader.conf's default is on the ESP.
func TestSystemdBootPlacement(t *testing.T) {
	for _, c := range []struct {
		name         string
		files        []string
		mounts       map[string]Mount
		boot, esp    string
		untouchedDir string // must get no imgbase file
	}{
		{"ESP at /boot", []string{"boot/loader/loader.conf"},
			map[string]Mount{"/boot": espMount}, "boot", "boot", ""},
		{"ESP at /boot/efi, /boot ext4", []string{"boot/efi/loader/loader.conf"},
			map[string]Mount{"/boot": ext4Mount, "/boot/efi": espMount}, "boot/efi", "boot/efi", "boot"},
		{"ESP at /efi", []string{"efi/loader/loader.conf"},
			map[string]Mount{"/efi": espMount}, "efi", "efi", "boot"},
		{"ESP at /efi, XBOOTLDR at /boot", []string{"efi/loader/loader.conf"},
			map[string]Mount{"/efi": espMount, "/boot": xbootMnt}, "boot", "efi", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			for _, p := range c.files {
				writeFile(t, filepath.Join(root, p), "timeout 3\n")
			}
			src := filepath.Join(root, "layerboot")
			writeFile(t, filepath.Join(src, "vmlinuz-6.1.0-18-amd64"), "kernel 18")
			writeFile(t, filepath.Join(src, "initrd.img-6.1.0-18-amd64"), "initrd 18")
			writeFile(t, filepath.Join(root, "cmdline"), "root=/dev/mapper/HostVG-root ro console=ttyS0,115200n8\n")
			m := NewAt(Locate(root, fakeMounts(c.mounts)), slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
			m.Cmdline = filepath.Join(root, "cmdline")
			m.BootIDPath = filepath.Join(root, "boot_id")
			if m.Loader != SystemdBoot {
				t.Fatalf("loader %v", m.Loader)
			}
			ctx := context.Background()
			if err := m.Setup(ctx); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"Base-1-0+1", "Base-1-0+2"} {
				if _, err := m.AddLayer(ctx, Layer{Name: name, NVR: "Base-1-0", VG: "HostVG", KernelSrcDir: src}, false); err != nil {
					t.Fatal(err)
				}
			}
			if err := m.SetDefault(ctx, "Base-1-0+2"); err != nil {
				t.Fatal(err)
			}
			boot := filepath.Join(root, c.boot)
			for _, p := range []string{"Base-1-0+1/vmlinuz-6.1.0-18-amd64", "Base-1-0+1/initrd.img-6.1.0-18-amd64", "Base-1-0+2/vmlinuz-6.1.0-18-amd64"} {
				if _, err := os.Stat(filepath.Join(boot, p)); err != nil {
					t.Errorf("%s not in %s: %v", p, c.boot, err)
				}
			}
			entries, _ := filepath.Glob(filepath.Join(boot, "loader", "entries", "*"))
			if len(entries) != 2 {
				t.Fatalf("entries in %s: %v", c.boot, entries)
			}
			counter := regexp.MustCompile(`\+\d+(-\d+)?\.conf$`)
			for _, e := range entries {
				if counter.MatchString(filepath.Base(e)) {
					t.Errorf("%s would be read as a boot counter", e)
				}
			}
			data, err := os.ReadFile(filepath.Join(boot, "loader", "entries", "Base-1-0_1.conf"))
			if err != nil || !strings.Contains(string(data), "linux /Base-1-0+1/vmlinuz-6.1.0-18-amd64\n") ||
				!strings.Contains(string(data), "initrd /Base-1-0+1/initrd.img-6.1.0-18-amd64\n") {
				t.Fatalf("entry: %s %v", data, err)
			}
			conf, err := os.ReadFile(filepath.Join(root, c.esp, "loader", "loader.conf"))
			if err != nil || !strings.Contains(string(conf), "default Base-1-0_2.conf\n") {
				t.Fatalf("loader.conf on the ESP: %q %v", conf, err)
			}
			if c.boot != c.esp {
				if _, err := os.Stat(filepath.Join(boot, "loader", "loader.conf")); err == nil {
					t.Errorf("loader.conf written to XBOOTLDR")
				}
				if _, err := os.Stat(filepath.Join(root, c.esp, "loader", "entries")); err == nil {
					t.Errorf("entries written to the ESP beside XBOOTLDR")
				}
			}
			if c.untouchedDir != "" {
				for _, p := range []string{"loader", "Base-1-0+1"} {
					if _, err := os.Stat(filepath.Join(root, c.untouchedDir, p)); err == nil {
						t.Errorf("%s/%s written, which systemd-boot does not read", c.untouchedDir, p)
					}
				}
			}
			if d, err := m.Default(); err != nil || d != "Base-1-0+2" {
				t.Fatalf("default %q %v", d, err)
			}
			if ps, err := m.Check(ctx, []Layer{{Name: "Base-1-0+1"}, {Name: "Base-1-0+2"}}); err != nil || len(ps) != 0 {
				t.Fatalf("check: %v %v", ps, err)
			}
			if err := m.RemoveLayer(ctx, "Base-1-0+1"); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(boot, "Base-1-0+1")); !os.IsNotExist(err) {
				t.Fatalf("the removed layer's directory: %v", err)
			}
			if _, err := os.Stat(filepath.Join(boot, "Base-1-0+2", "vmlinuz-6.1.0-18-amd64")); err != nil {
				t.Fatalf("the kept layer's kernel: %v", err)
			}
		})
	}
}
