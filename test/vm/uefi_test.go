//go:build vm

package vm

import (
	"regexp"
	"strings"
	"testing"
)

// uefiLayout is one way a UEFI host mounts its boot partitions. The UEFI
// image is installed as Debian's installer lays a host out (GPT, the ESP
// FAT32 at /boot/efi, /boot ext4 on its own partition, systemd-boot);
// relayout turns the running guest into another layout before imgbase
// ever sees it, as the admin's host would have been set up.
type uefiLayout struct {
	name string
	// esp and boot are where bootctl finds the ESP and where it reads
	// entries and kernels (XBOOTLDR, else the ESP) once relaid out.
	esp, boot string
	relayout  string
}

// keepKernels copies the host's kernels out of /boot before /boot changes:
// a layer made from the host's root takes its kernel from /boot.
const keepKernels = `mkdir -p /run/oldboot; cp /boot/vmlinuz-* /boot/initrd.img-* /boot/config-* /boot/System.map-* /run/oldboot/; `

var uefiLayouts = []uefiLayout{
	{name: "boot-efi", esp: "/boot/efi", boot: "/boot/efi"},
	{name: "efi", esp: "/efi", boot: "/efi", relayout: `set -e
umount /boot/efi
mkdir -p /efi
awk '$2=="/boot/efi"{$2="/efi"} {print}' /etc/fstab >/etc/fstab.new && mv /etc/fstab.new /etc/fstab
systemctl daemon-reload
mount /efi`},
	// The ESP is /boot: the kernels go onto it, the ext4 partition is
	// no longer mounted.
	{name: "esp-boot", esp: "/boot", boot: "/boot", relayout: `set -e
` + keepKernels + `
umount /boot/efi /boot
awk '$2=="/boot"{next} $2=="/boot/efi"{$2="/boot"} {print}' /etc/fstab >/etc/fstab.new && mv /etc/fstab.new /etc/fstab
systemctl daemon-reload
mount /boot
cp /run/oldboot/* /boot/`},
	// The ext4 /boot partition becomes an XBOOTLDR partition (FAT: the
	// firmware's driver is all systemd-boot reads it with), the ESP stays
	// at /boot/efi.
	{name: "xbootldr", esp: "/boot/efi", boot: "/boot", relayout: `set -e
` + keepKernels + `
dev=$(findmnt -no SOURCE /boot)
disk=/dev/$(lsblk -no PKNAME "$dev")
part=$(cat /sys/class/block/$(basename "$dev")/partition)
umount /boot/efi /boot
wipefs -qa "$dev"
mkfs.vfat -F 32 -n XBOOTLDR "$dev" >/dev/null
sfdisk -q --no-reread --part-type "$disk" "$part" BC13C2FF-59E6-4262-A352-B275FD6F7172
udevadm trigger --action=change "$dev"
udevadm settle
uuid=$(blkid -s UUID -o value "$dev")
awk -v u="$uuid" '$2=="/boot"{print "UUID=" u " /boot vfat umask=0077 0 2"; next} {print}' /etc/fstab >/etc/fstab.new && mv /etc/fstab.new /etc/fstab
systemctl daemon-reload
mount /boot
mkdir -p /boot/efi
mount /boot/efi
cp /run/oldboot/* /boot/`},
}

// Issue #14 item 1: a UEFI host with systemd-boot, in every layout bootctl
// knows: the ESP at /boot/efi (Debian's installer), at /efi, as /boot, and
// an XBOOTLDR /boot beside the ESP. imgbase must put every entry and kernel
// where systemd-boot reads them and nowhere else, and init, a boot into a
// layer, a trial that fails and falls back, an update and its trial boot,
// `boot --next`, `rollback` and `layer --remove` must hold in each. Five
// boots a layout, OVMF adding ~20 s to each: about 11 minutes a layout
// under TCG, so it runs in `make check-long` only, two layouts at a time.
func TestUEFISystemdBoot(t *testing.T) {
	LongOnly(t, "about 11 minutes a layout, four layouts")
	// The parent only waits for its layouts; each takes a guest slot.
	t.Parallel()
	for _, lay := range uefiLayouts {
		t.Run(lay.name, func(t *testing.T) {
			Parallel(t)
			uefiWalk(t, BootUEFI(t), lay)
		})
	}
}

func uefiWalk(t *testing.T, g *Guest, lay uefiLayout) {
	l1, l2, v2layer := nvr1+"+1", nvr1+"+2", nvr2+"+1"
	if b := g.Booted(); b.LV != vg+"/root" {
		t.Fatalf("first boot: %q (%s), want %s/root", b.LV, b.Cmdline, vg)
	}
	if lay.relayout != "" {
		g.MustShell(lay.relayout)
	}
	// systemd's own view of the layout, before imgbase looks.
	if esp := strings.TrimSpace(g.MustRun("bootctl", "--print-esp-path")); esp != lay.esp {
		t.Fatalf("bootctl --print-esp-path = %q, want %s: the guest is not the layout under test", esp, lay.esp)
	}
	if b := strings.TrimSpace(g.MustRun("bootctl", "--print-boot-path")); b != lay.boot {
		t.Fatalf("bootctl --print-boot-path = %q, want %s: the guest is not the layout under test", b, lay.boot)
	}
	id := func(layer string) string { return strings.ReplaceAll(layer, "+", "_") }
	selected := func(layer string) {
		t.Helper()
		// systemd-boot itself says which entry it booted (it lowercases ids).
		if sel := g.loaderEntrySelected(); sel != strings.ToLower(id(layer))+".conf" {
			t.Errorf("systemd-boot's LoaderEntrySelected = %q, want %s's entry", sel, layer)
		}
	}
	onBoot := func(layer string) {
		t.Helper()
		if r, _ := g.Shell(tenMinutes, "test -f "+lay.boot+"/loader/entries/'"+id(layer)+".conf' && ls "+lay.boot+"/'"+layer+"'/vmlinuz-* "+lay.boot+"/'"+layer+"'/initrd.img-*"); r.ExitCode != 0 {
			t.Errorf("%s: no entry %s.conf or no kernel and initramfs in %s/%s/:\n%s",
				layer, id(layer), lay.boot, layer, g.MustShell("find "+lay.boot+" "+lay.esp+" | sort -u"))
		}
	}
	// Nothing of imgbase's where systemd-boot never reads: an ext4 /boot,
	// or the ESP's entries beside an XBOOTLDR partition.
	strays := func() {
		t.Helper()
		var where []string
		if lay.boot != "/boot" {
			where = append(where, "/boot/loader/entries", "/boot/"+l1)
		}
		if lay.esp != lay.boot {
			where = append(where, lay.esp+"/loader/entries/"+id(l1)+".conf", lay.esp+"/"+l1)
		}
		if len(where) == 0 {
			return
		}
		if out := g.MustShell("ls -d " + strings.Join(where, " ") + " 2>/dev/null || true"); strings.TrimSpace(out) != "" {
			t.Errorf("imgbase wrote where systemd-boot never reads: %s", out)
		}
	}
	isDefault := func(layer, when string) {
		t.Helper()
		if d := strings.TrimSpace(g.Imgbase("boot", "--get-default")); d != layer {
			t.Errorf("%s: boot --get-default = %q, want %s", when, d, layer)
		}
		if conf := g.MustRun("cat", lay.esp+"/loader/loader.conf"); !regexp.MustCompile(`(?m)^default ` + regexp.QuoteMeta(id(layer)) + `\.conf$`).MatchString(conf) {
			t.Errorf("%s: %s/loader/loader.conf does not make %s the default:\n%s", when, lay.esp, layer, conf)
		}
	}
	clean := func(when string) {
		t.Helper()
		if r := g.ImgbaseResult("check"); r.ExitCode != 0 {
			t.Errorf("imgbase check %s: exit %d\n%s%s", when, r.ExitCode, r.Stdout, r.Stderr)
		}
	}

	g.Imgbase("layout", "--init")
	st := g.Imgbase("boot", "--status")
	t.Logf("imgbase boot --status:\n%s", st)
	if !strings.Contains(st, "systemd-boot") {
		t.Errorf("boot --status does not name systemd-boot:\n%s", st)
	}
	onBoot(l1)
	strays()
	isDefault(l1, "after layout --init")
	clean("after layout --init")

	g.ExpectBooted(g.Reboot(), l1, "after layout --init")
	if s := g.WaitStarted(); s != "active success" {
		t.Errorf("imgbase-boot-success.service: %q, want active success", s)
	}
	selected(l1)

	// A trial that fails: the layer's init exits, the kernel panics (the
	// trial entry carries panic=10), the one-shot is spent, systemd-boot
	// boots the default.
	g.Imgbase("layer", "--add")
	onBoot(l2)
	g.InLayer(l2, `rm -f "$M/usr/sbin/init"; printf '#!/bin/sh\necho imgbase-test: broken init >/dev/console\nsleep 2\nexit 1\n' >"$M/usr/sbin/init"; chmod 755 "$M/usr/sbin/init"`)
	if st := g.Imgbase("boot", "--status"); !strings.Contains(st, "on trial: "+l2) {
		t.Fatalf("the broken layer %s is not on trial:\n%s", l2, st)
	}
	off := g.SerialSize()
	g.ExpectBooted(g.Reboot(), l1, "fallback from the broken trial "+l2)
	serial := g.SerialSince(off)
	if !strings.Contains(serial, "imgbase-test: broken init") || strings.Count(serial, "Linux version") != 2 {
		t.Errorf("the serial log shows no failed trial of %s then the fallback (two kernels, the broken init's line)", l2)
	}
	g.WaitStarted()
	isDefault(l1, "after the failed trial of "+l2)
	if st := g.Imgbase("boot", "--status"); !regexp.MustCompile(`\bfallback +`+regexp.QuoteMeta(l2)+`\b`).MatchString(st) || strings.Contains(st, "on trial:") {
		t.Errorf("boot --status does not report the fallback from %s (or still a trial):\n%s", l2, st)
	}

	// The delta is not the subject here: TestDeltaUpdate proves it.
	out := g.Imgbase("update", "--full", v2img)
	t.Logf("imgbase update:\n%s", out)
	onBoot(v2layer)
	clean("after the update")
	if st := g.Imgbase("boot", "--status"); !strings.Contains(st, "on trial: "+v2layer) {
		t.Errorf("%s is not on trial after the update:\n%s", v2layer, st)
	}
	// The new layer mounts the host's boot partitions although v2's image
	// knows of none.
	fstab := g.LayerFile(v2layer, "etc/fstab")
	for _, mp := range []string{lay.esp, lay.boot} {
		if !fstabMounts(fstab, mp) {
			t.Errorf("v2's layer does not mount %s:\n%s", mp, fstab)
		}
	}
	g.ExpectBooted(g.Reboot(), v2layer, "the update's trial boot (systemd-boot one-shot)")
	selected(v2layer)
	if s := g.WaitStarted(); s != "active success" {
		t.Errorf("imgbase-boot-success.service on v2's trial boot: %q, want active success", s)
	}
	isDefault(v2layer, "after v2's trial boot")

	g.Imgbase("boot", "--next", l1)
	g.ExpectBooted(g.Reboot(), l1, "boot --next "+l1)
	selected(l1)
	g.WaitStarted()
	isDefault(v2layer, "after boot --next "+l1)

	// The newest earlier layer that booted good: l1, not l2 (never booted).
	out = g.Imgbase("rollback")
	t.Logf("imgbase rollback: %s", out)
	if !strings.HasPrefix(out, l1+" is now the default") || !strings.Contains(out, "skipped "+l2) {
		t.Errorf("rollback from %s says %q, want %s the default and %s skipped (it never booted)", v2layer, out, l1, l2)
	}
	isDefault(l1, "after rollback")

	g.Imgbase("layer", "--remove", l2)
	if out := g.MustShell("ls -d " + lay.boot + "/loader/entries/" + id(l2) + ".conf " + lay.boot + "/" + l2 + " 2>/dev/null || true"); strings.TrimSpace(out) != "" {
		t.Errorf("layer --remove %s left its boot files: %s", l2, out)
	}
	strays()
	clean("at the end")
}

// loaderEntrySelected is the entry systemd-boot booted, from its EFI
// variable (4 bytes of attributes, then UTF-16LE). efivarfs files cannot
// seek: tail reads them through a pipe.
func (g *Guest) loaderEntrySelected() string {
	g.t.Helper()
	return strings.TrimSpace(g.MustShell("cat /sys/firmware/efi/efivars/LoaderEntrySelected-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f | tail -c +5 | tr -d '\\000'"))
}
