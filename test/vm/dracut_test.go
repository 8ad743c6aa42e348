//go:build vm

package vm

import (
	"regexp"
	"strings"
	"testing"
)

// Issue #14 item 2 on a host whose initramfs Debian's dracut makes instead
// of initramfs-tools (build.sh dracut-image; its payload's v2.img is a
// dracut OS too, since a layer boots the initramfs of its own image). Unlike
// initramfs-tools, whose udev rules activate the whole VG, dracut activates
// LVM only for what the command line names: with neither rd.lvm.lv= nor
// rd.auto it activates nothing. Proven at every boot: the first
// (HostVG/root), into the first layer after layout --init, v2's trial boot
// after an update, the rollback to the first layer: the root is the layer's
// LV, the command line names it with rd.lvm.lv= and nothing else of LVM,
// and dracut's initramfs ran (its lvm_scan left /run/initramfs/.need_shutdown,
// which nothing else in this initramfs or the real root writes, and the
// console shows its initrd units), with the layer's copy of the initramfs
// a dracut one holding lvm and thin_check. Not proven here: `dracut -f` run
// by hand in a layer, which runs no hook (a kernel package's postinst runs
// /etc/kernel/postinst.d/dracut, then imgbase's zz-imgbase). About 18
// minutes under TCG beside another guest (four boots of 2-3 minutes: the
// initramfs is 16 MB, and dracut's shutdown unpacks it again at each
// reboot), so it runs in `make check-long` only.
func TestDracutHost(t *testing.T) {
	LongOnly(t, "about 18 minutes")
	Parallel(t)
	g := BootDracut(t)
	l1, v2layer := nvr1+"+1", nvr2+"+1"
	b := g.Booted()
	if b.LV != vg+"/root" {
		t.Fatalf("first boot: %q (%s), want %s/root", b.LV, b.Cmdline, vg)
	}
	g.expectDracut(b, "root", "first boot", 0)

	g.Imgbase("layout", "--init")
	g.expectDracutInitrd(l1)
	if r := g.ImgbaseResult("check"); r.ExitCode != 0 {
		t.Errorf("imgbase check after layout --init: exit %d\n%s%s", r.ExitCode, r.Stdout, r.Stderr)
	}

	off := g.SerialSize()
	b = g.Reboot()
	g.ExpectBooted(b, l1, "after layout --init")
	g.expectDracut(b, l1, "after layout --init", off)
	if s := g.WaitStarted(); s != "active success" {
		t.Errorf("imgbase-boot-success.service: %q, want active success", s)
	}

	out := g.Imgbase("update", v2img)
	t.Logf("imgbase update:\n%s", out)
	if st := g.Imgbase("boot", "--status"); !strings.Contains(st, "on trial: "+v2layer) {
		t.Errorf("%s is not on trial after the update:\n%s", v2layer, st)
	}
	g.expectDracutInitrd(v2layer)
	if r := g.ImgbaseResult("check"); r.ExitCode != 0 {
		t.Errorf("imgbase check after the update: exit %d\n%s%s", r.ExitCode, r.Stdout, r.Stderr)
	}

	off = g.SerialSize()
	b = g.Reboot()
	g.ExpectBooted(b, v2layer, "the update's trial boot")
	g.expectDracut(b, v2layer, "the update's trial boot", off)
	if s := g.WaitStarted(); s != "active success" {
		t.Errorf("imgbase-boot-success.service on v2's trial boot: %q, want active success", s)
	}
	if v := strings.TrimSpace(g.MustRun("cat", "/usr/share/imgbase-test/version")); v != "2.0" {
		t.Errorf("v2's trial boot runs version %q, want 2.0", v)
	}
	if d := strings.TrimSpace(g.Imgbase("boot", "--get-default")); d != v2layer {
		t.Errorf("after v2's trial boot, boot --get-default = %q, want %s", d, v2layer)
	}

	out = g.Imgbase("rollback")
	t.Logf("imgbase rollback: %s", out)
	if d := strings.TrimSpace(g.Imgbase("boot", "--get-default")); d != l1 {
		t.Errorf("after rollback, boot --get-default = %q, want %s", d, l1)
	}
	off = g.SerialSize()
	b = g.Reboot()
	g.ExpectBooted(b, l1, "the rollback to the first layer")
	g.expectDracut(b, l1, "the rollback to the first layer", off)
	if r := g.ImgbaseResult("check"); r.ExitCode != 0 {
		t.Errorf("imgbase check after the rollback: exit %d\n%s%s", r.ExitCode, r.Stdout, r.Stderr)
	}
}

// expectDracut checks that the boot b of lv (an LV of vg), whose console
// output starts at serialOff in the serial log, went through dracut's
// initramfs, activated by the rd.lvm.lv= of its command line alone.
func (g *Guest) expectDracut(b BootInfo, lv, why string, serialOff int64) {
	g.t.Helper()
	args := strings.Fields(b.Cmdline)
	if !contains(args, "rd.lvm.lv="+vg+"/"+lv) {
		g.t.Errorf("%s: /proc/cmdline %q lacks rd.lvm.lv=%s/%s", why, b.Cmdline, vg, lv)
	}
	for _, a := range args {
		if (strings.HasPrefix(a, "rd.lvm") && a != "rd.lvm.lv="+vg+"/"+lv) || strings.HasPrefix(a, "rd.auto") {
			g.t.Errorf("%s: /proc/cmdline has %s: rd.lvm.lv=%s/%s is not all dracut was told", why, a, vg, lv)
		}
	}
	// The running root is a dracut OS: initramfs-tools made nothing it boots.
	if pk := g.MustShell("dpkg-query -W -f '${Package} ${db:Status-Abbrev}\\n' dracut initramfs-tools 2>/dev/null || true"); !strings.Contains(pk, "dracut ii") || strings.Contains(pk, "initramfs-tools ii") {
		g.t.Errorf("%s: the root is not a dracut OS without initramfs-tools:\n%s", why, pk)
	}
	// /run is new at each boot; only dracut's lvm_scan writes this file.
	if r, _ := g.Run(tenMinutes, "test", "-e", "/run/initramfs/.need_shutdown"); r.ExitCode != 0 {
		g.t.Errorf("%s: no /run/initramfs/.need_shutdown: dracut's lvm_scan did not run", why)
	}
	// systemd's status lines of the initramfs' dracut units (they run
	// there only: ConditionPathExists=/etc/initrd-release), read from
	// outside the guest, whichever journal the initramfs wrote to.
	var units []string
	for _, l := range strings.Split(g.SerialSince(serialOff), "\n") {
		if dracutUnit.MatchString(l) {
			units = append(units, strings.TrimSpace(l))
		}
	}
	if len(units) == 0 {
		g.t.Errorf("%s: the console shows no dracut initramfs unit (serial log %s from byte %d)", why, g.SerialLog(), serialOff)
	}
	g.t.Logf("%s: dracut's initramfs ran: /run/initramfs/.need_shutdown; /proc/cmdline %s; console:\n%s", why, b.Cmdline, strings.Join(units, "\n"))
}

// dracutUnit matches systemd's console line of a dracut initramfs unit, by
// unit name or description (StatusUnitFormat).
var dracutUnit = regexp.MustCompile(`dracut-(cmdline|initqueue|pre-pivot)\.service|dracut (cmdline|initqueue|pre-pivot and cleanup) hook`)

// expectDracutInitrd checks that layer's entry boots a dracut initramfs
// that can activate a thin LV.
func (g *Guest) expectDracutInitrd(layer string) {
	g.t.Helper()
	entry := strings.TrimSpace(g.MustShell("grep -l '^options.* img.bootid=" + layer + "\\b' /boot/loader/entries/*.conf"))
	initrd := strings.TrimSpace(g.MustShell("awk '$1 == \"initrd\" {print $2}' '" + entry + "'"))
	if !strings.HasPrefix(initrd, "/"+layer+"/") {
		g.t.Errorf("the entry of %s (%s) boots the initramfs %q, not its own copy", layer, entry, initrd)
		return
	}
	files := g.MustShell("lsinitrd '/boot" + initrd + "'")
	for _, want := range []string{"dracut modules:\n", "\nlvm\n", "usr/sbin/thin_check", "usr/sbin/lvm"} {
		if !strings.Contains(files, want) {
			g.t.Errorf("the initramfs of %s (/boot%s) is not dracut's with lvm and thin_check: no %q", layer, initrd, want)
		}
	}
}
