//go:build vm

package vm

import (
	"regexp"
	"strings"
	"testing"
)

// Issue #14 item 1 on a UEFI host laid out as Debian's installer does it:
// OVMF, GPT, the ESP (FAT32) at /boot/efi, /boot ext4, systemd-boot. imgbase
// must find the ESP there and put every entry and kernel on it (systemd-boot
// reads nothing else), never in /boot. Boots: the first (HostVG/root), into
// the first layer, v2's trial boot, the rollback: about 11 minutes under
// TCG (OVMF adds ~20 s a boot), so it runs in `make check-long` only.
func TestUEFISystemdBoot(t *testing.T) {
	LongOnly(t, "about 11 minutes")
	Parallel(t)
	g := BootUEFI(t)
	l1, v2layer := nvr1+"+1", nvr2+"+1"
	if esp := strings.TrimSpace(g.MustRun("bootctl", "--print-esp-path")); esp != "/boot/efi" {
		t.Fatalf("bootctl --print-esp-path = %q, want /boot/efi: the image is not the layout under test", esp)
	}
	if b := g.Booted(); b.LV != vg+"/root" {
		t.Fatalf("first boot: %q (%s), want %s/root", b.LV, b.Cmdline, vg)
	}

	g.Imgbase("layout", "--init")
	st := g.Imgbase("boot", "--status")
	t.Logf("imgbase boot --status:\n%s", st)
	if !strings.Contains(st, "systemd-boot") {
		t.Errorf("boot --status does not name systemd-boot:\n%s", st)
	}
	onESP := func(layer string) {
		t.Helper()
		id := strings.ReplaceAll(layer, "+", "_")
		if r, _ := g.Shell(tenMinutes, "test -f /boot/efi/loader/entries/'"+id+".conf' && ls /boot/efi/'"+layer+"'/vmlinuz-* /boot/efi/'"+layer+"'/initrd.img-*"); r.ExitCode != 0 {
			t.Errorf("%s: no entry %s.conf or no kernel and initramfs in /boot/efi/%s/:\n%s",
				layer, id, layer, g.MustShell("find /boot/efi | sort"))
		}
	}
	onESP(l1)
	if out := g.MustShell("ls -d /boot/loader /boot/" + l1 + " 2>/dev/null || true"); strings.TrimSpace(out) != "" {
		t.Errorf("imgbase wrote to the ext4 /boot, which systemd-boot never reads: %s", out)
	}
	if conf := g.MustRun("cat", "/boot/efi/loader/loader.conf"); !regexp.MustCompile(`(?m)^default ` + regexp.QuoteMeta(strings.ReplaceAll(l1, "+", "_")) + `\.conf$`).MatchString(conf) {
		t.Errorf("loader.conf does not make %s the default:\n%s", l1, conf)
	}
	if r := g.ImgbaseResult("check"); r.ExitCode != 0 {
		t.Errorf("imgbase check after layout --init: exit %d\n%s%s", r.ExitCode, r.Stdout, r.Stderr)
	}

	g.ExpectBooted(g.Reboot(), l1, "after layout --init")
	if s := g.WaitStarted(); s != "active success" {
		t.Errorf("imgbase-boot-success.service: %q, want active success", s)
	}
	// systemd-boot itself says which entry it booted (it lowercases ids).
	if sel := g.loaderEntrySelected(); sel != strings.ToLower(strings.ReplaceAll(l1, "+", "_"))+".conf" {
		t.Errorf("systemd-boot's LoaderEntrySelected = %q, want %s's entry", sel, l1)
	}

	out := g.Imgbase("update", v2img)
	t.Logf("imgbase update:\n%s", out)
	onESP(v2layer)
	if r := g.ImgbaseResult("check"); r.ExitCode != 0 {
		t.Errorf("imgbase check after the update: exit %d\n%s%s", r.ExitCode, r.Stdout, r.Stderr)
	}
	if st := g.Imgbase("boot", "--status"); !strings.Contains(st, "on trial: "+v2layer) {
		t.Errorf("%s is not on trial after the update:\n%s", v2layer, st)
	}
	if d := strings.TrimSpace(g.Imgbase("boot", "--get-default")); d != l1 {
		t.Errorf("before v2's trial boot, boot --get-default = %q, want %s", d, l1)
	}
	// The new layer mounts the host's ESP although v2's image knows of none.
	if fstab := g.LayerFile(v2layer, "etc/fstab"); !fstabMounts(fstab, "/boot/efi") {
		t.Errorf("v2's layer does not mount /boot/efi:\n%s", fstab)
	}

	g.ExpectBooted(g.Reboot(), v2layer, "the update's trial boot (systemd-boot one-shot)")
	if sel := g.loaderEntrySelected(); sel != strings.ToLower(strings.ReplaceAll(v2layer, "+", "_"))+".conf" {
		t.Errorf("systemd-boot's LoaderEntrySelected = %q, want %s's entry", sel, v2layer)
	}
	if s := g.WaitStarted(); s != "active success" {
		t.Errorf("imgbase-boot-success.service on v2's trial boot: %q, want active success", s)
	}
	if d := strings.TrimSpace(g.Imgbase("boot", "--get-default")); d != v2layer {
		t.Errorf("after v2's trial boot, boot --get-default = %q, want %s", d, v2layer)
	}

	out = g.Imgbase("rollback")
	t.Logf("imgbase rollback: %s", out)
	if d := strings.TrimSpace(g.Imgbase("boot", "--get-default")); d != l1 {
		t.Errorf("after rollback, boot --get-default = %q, want %s", d, l1)
	}
	g.ExpectBooted(g.Reboot(), l1, "the rollback to the first layer")
	if r := g.ImgbaseResult("check"); r.ExitCode != 0 {
		t.Errorf("imgbase check after the rollback: exit %d\n%s%s", r.ExitCode, r.Stdout, r.Stderr)
	}
}

// loaderEntrySelected is the entry systemd-boot booted, from its EFI
// variable (4 bytes of attributes, then UTF-16LE). efivarfs files cannot
// seek: tail reads them through a pipe.
func (g *Guest) loaderEntrySelected() string {
	g.t.Helper()
	return strings.TrimSpace(g.MustShell("cat /sys/firmware/efi/efivars/LoaderEntrySelected-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f | tail -c +5 | tr -d '\\000'"))
}
