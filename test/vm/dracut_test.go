//go:build vm

package vm

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
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
// a dracut one holding lvm and thin_check. Between the first two boots,
// #14 item 8 on such a host: the kernel package's postinst run in the first
// layer (dracutKernelPostinst), whose update-grub (Debian's zz-update-grub
// hook) keeps imgbase's menu. Not proven here: `dracut -f` run by hand,
// which runs no hook (the README says to run `imgbase boot --sync-kernel`
// after it). About 25 minutes under TCG beside another guest (five boots of
// 2-3 minutes: the initramfs is 16 MB, and dracut's shutdown unpacks it
// again at each reboot), so it runs in `make check-long` only.
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
	g.dracutKernelPostinst(l1)

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
// that can activate a thin LV, holding the files extra too (one listing:
// lsinitrd takes some 40 s under TCG).
func (g *Guest) expectDracutInitrd(layer string, extra ...string) {
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
	for _, want := range extra {
		if !strings.Contains(files, want) {
			g.t.Errorf("the initramfs of %s (/boot%s) has no %s", layer, initrd, want)
		}
	}
}

// dracutKernelPostinst proves #14 item 8 on a dracut host, in the running
// layer: the kernel package's postinst, run again by dpkg-reconfigure as an
// upgrade of the package runs it, makes a new initramfs with Debian's
// /etc/kernel/postinst.d/dracut (with a dracut module added that leaves a
// marker in /run at boot), then runs imgbase's zz-imgbase, which copies it
// into /boot/<layer>/; the next boot of the layer, from its own entry, runs
// the new initramfs (the marker in /run, dracut's units on the console).
// One reboot.
func (g *Guest) dracutKernelPostinst(layer string) {
	t := g.t
	t.Helper()
	kver := strings.TrimSpace(g.MustShell("uname -r"))
	initrd := "/boot/" + layer + "/initrd.img-" + kver
	oldSum := g.MustShell("sha256sum " + initrd)
	marker := fmt.Sprintf("dracut-postinst-%d", time.Now().UnixNano())
	g.MustShell(`set -e
m=/usr/lib/dracut/modules.d/99imgbasemarker
mkdir -p $m
cat >$m/module-setup.sh <<'END'
#!/bin/bash
check() { return 0; }
depends() { return 0; }
install() {
    inst_simple /etc/imgbase-marker
    inst_hook pre-pivot 99 "$moddir/marker.sh"
}
END
cat >$m/marker.sh <<'END'
#!/bin/sh
read -r m </etc/imgbase-marker
echo "$m" >/run/imgbase-marker
END
chmod 755 $m/module-setup.sh $m/marker.sh
echo 'add_dracutmodules+=" imgbasemarker "' >/etc/dracut.conf.d/zz-imgbase-marker.conf
echo ` + marker + ` >/etc/imgbase-marker`)
	g.serialGrub() // the postinst runs update-grub too (zz-update-grub)
	r, err := g.Shell(20*time.Minute, "DEBIAN_FRONTEND=noninteractive dpkg-reconfigure linux-image-"+kver+" 2>&1")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("dpkg-reconfigure linux-image-%s (exit %d):\n%s", kver, r.ExitCode, r.Stdout)
	if r.ExitCode != 0 || !strings.Contains(r.Stdout, layer+" boots kernel "+kver) {
		t.Fatalf("the kernel package's postinst in %s did not run imgbase's hook to the end (exit %d)", layer, r.ExitCode)
	}
	if g.MustShell("sha256sum "+initrd) == oldSum {
		t.Errorf("%s did not change", initrd)
	}
	if n := strings.TrimSpace(g.MustShell("grep -c '^### BEGIN imgbase ###$' /boot/grub/grub.cfg || true")); n != "1" {
		t.Errorf("grub.cfg after the postinst's update-grub has %s imgbase blocks, want 1", n)
	}
	g.expectDracutInitrd(layer, "etc/imgbase-marker")
	if c := g.ImgbaseResult("check"); c.ExitCode != 0 {
		t.Errorf("imgbase check after the kernel postinst: exit %d\n%s%s", c.ExitCode, c.Stdout, c.Stderr)
	}

	off := g.SerialSize()
	b := g.Reboot()
	g.ExpectBooted(b, layer, "after the kernel postinst in "+layer)
	g.expectDracut(b, layer, "after the kernel postinst in "+layer, off)
	if !strings.Contains(b.Cmdline, "BOOT_IMAGE=/"+layer+"/vmlinuz-") {
		t.Errorf("the boot after the kernel postinst was not from imgbase's entry of %s: %s", layer, b.Cmdline)
	}
	if got := strings.TrimSpace(g.MustShell("cat /run/imgbase-marker 2>/dev/null || true")); got != marker {
		t.Errorf("the boot of %s did not run the new initramfs: /run/imgbase-marker = %q, want %q", layer, got, marker)
	}
}
