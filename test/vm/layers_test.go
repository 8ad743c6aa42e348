//go:build vm

package vm

import (
	"regexp"
	"strings"
	"testing"
)

// Issue #4 on one guest: every way of choosing a layer, each proven by a
// real boot (findmnt /, lvs by device number, /proc/cmdline), and a layer
// whose init dies falls back by itself. Boots: the first, then six reboots
// (the fifth is two boots: the failed trial and the fallback; the third,
// after boot --set-default, and the sixth, a plain boot after the
// fallback, are make check-long's only).
func TestBootLayers(t *testing.T) {
	Parallel(t)
	g := BootLayered(t)
	l1, l2, l3, l4 := FirstLayer, nvr1+"+2", nvr1+"+3", nvr1+"+4"

	g.WaitStarted()
	if d := strings.TrimSpace(g.Imgbase("boot", "--get-default")); d != l1 {
		t.Errorf("after booting %s, boot --get-default = %q", l1, d)
	}

	for _, want := range []string{l2, l3} {
		before := g.LVs()
		g.Imgbase("layer", "--add")
		if a := added(before, g.LVs()); len(a) != 1 || a[0] != want {
			t.Fatalf("layer --add made %v, want %s", a, want)
		}
	}
	list := g.Imgbase("boot", "--list")
	t.Logf("imgbase boot --list:\n%s", list)
	for _, l := range []string{l1, l2, l3} {
		if !strings.Contains(list, l) {
			t.Errorf("boot --list lacks %s", l)
		}
	}
	st := g.Imgbase("boot", "--status")
	t.Logf("imgbase boot --status:\n%s", st)
	if !strings.Contains(st, "on trial: "+l3) {
		t.Errorf("the newest layer %s is not on trial after layer --add:\n%s", l3, st)
	}

	// A one-shot choice wins over the pending trial, once.
	g.Imgbase("boot", "--next", l2)
	g.ExpectBooted(g.Reboot(), l2, "boot --next "+l2)
	g.WaitStarted()

	// Without a choice: the trial of the newest layer, which succeeds.
	g.ExpectBooted(g.Reboot(), l3, "no selection after --next (the trial of the newest layer)")
	if s := g.WaitStarted(); s != "active success" {
		t.Errorf("imgbase-boot-success.service on the trial boot: %q, want active success", s)
	}
	if d := strings.TrimSpace(g.Imgbase("boot", "--get-default")); d != l3 {
		t.Errorf("after the successful trial of %s, boot --get-default = %q", l3, d)
	}
	st = g.Imgbase("boot", "--status")
	t.Logf("imgbase boot --status:\n%s", st)
	if !regexp.MustCompile(`\bgood +`+regexp.QuoteMeta(l3)+`\b`).MatchString(st) || strings.Contains(st, "on trial:") {
		t.Errorf("boot --status does not say the trial of %s was good and is over:\n%s", l3, st)
	}

	// The default set by hand: the rollback below boots one set the same
	// way (saved_entry), so this boot is make check-long's.
	g.Imgbase("boot", "--set-default", l1)
	if Long() {
		g.ExpectBooted(g.Reboot(), l1, "boot --set-default "+l1)
		g.WaitStarted()
	}
	if d := strings.TrimSpace(g.Imgbase("boot", "--get-default")); d != l1 {
		t.Errorf("boot --get-default = %q, want %s", d, l1)
	}

	// The oldest layer has nothing to roll back to; a missing layer is refused.
	if r := g.ImgbaseResult("rollback"); r.ExitCode == 0 {
		t.Errorf("rollback from the oldest layer %s succeeded: %s", l1, r.Stdout)
	}
	if r := g.ImgbaseResult("rollback", "--to", nvr1+"+9"); r.ExitCode == 0 {
		t.Errorf("rollback --to a missing layer succeeded: %s", r.Stdout)
	}
	if d := strings.TrimSpace(g.Imgbase("boot", "--get-default")); d != l1 {
		t.Errorf("refused rollbacks changed the default to %q", d)
	}
	g.Imgbase("boot", "--set-default", l3)
	out := g.Imgbase("rollback")
	if !strings.Contains(out, l2) {
		t.Errorf("rollback from %s says %q, want it to name %s", l3, out, l2)
	}
	g.ExpectBooted(g.Reboot(), l2, "rollback from "+l3)
	g.WaitStarted()

	// A layer whose init exits: the kernel panics (trial entries carry
	// panic=10), GRUB falls back to the default by itself.
	g.Imgbase("layer", "--add")
	// The init waits before it dies: the panic's printk cut its line short
	// on the console while the tty still held it ("imgbase-test: br[ ...
	// Kernel panic").
	g.InLayer(l4, `rm -f "$M/usr/sbin/init"; printf '#!/bin/sh\necho imgbase-test: broken init >/dev/console\nsleep 2\nexit 1\n' >"$M/usr/sbin/init"; chmod 755 "$M/usr/sbin/init"`)
	if st = g.Imgbase("boot", "--status"); !strings.Contains(st, "on trial: "+l4) {
		t.Fatalf("the broken layer %s is not on trial:\n%s", l4, st)
	}
	entry := g.MustShell("cat /boot/loader/entries/" + strings.ReplaceAll(l4, "+", "_") + ".conf")
	if !strings.Contains(entry, "panic=") {
		t.Errorf("the trial entry of %s has no panic=:\n%s", l4, entry)
	}
	off := g.SerialSize()
	g.ExpectBooted(g.Reboot(), l2, "fallback from the broken trial "+l4)
	serial := g.SerialSince(off)
	if !strings.Contains(serial, "imgbase-test: broken init") || !strings.Contains(serial, "Kernel panic") {
		t.Errorf("the serial log shows no panic of the broken layer's init (see the serial log)")
	}
	if n := strings.Count(serial, "Linux version"); n != 2 {
		t.Errorf("%d kernels started between the reboot and the fallback, want 2 (the trial, the fallback)", n)
	}
	g.WaitStarted()
	if d := strings.TrimSpace(g.Imgbase("boot", "--get-default")); d != l2 {
		t.Errorf("after the failed trial of %s, boot --get-default = %q, want %s", l4, d, l2)
	}
	st = g.Imgbase("boot", "--status")
	t.Logf("imgbase boot --status:\n%s", st)
	if !regexp.MustCompile(`\bfallback +` + regexp.QuoteMeta(l4) + `\b`).MatchString(st) {
		t.Errorf("boot --status does not report the fallback from %s:\n%s", l4, st)
	}
	if strings.Contains(st, "on trial:") {
		t.Errorf("boot --status still shows a trial after the fallback:\n%s", st)
	}
	// And the fallback sticks: the next plain boot is the default again
	// (boot --get-default said so above; the boot itself in check-long).
	if Long() {
		g.ExpectBooted(g.Reboot(), l2, "the boot after the fallback")
	}
}
