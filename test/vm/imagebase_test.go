//go:build vm

package vm

import (
	"strings"
	"testing"
)

// Issue #14, items 7 and 3 on one guest: a layer of a base installed from an
// image mounts the host's /boot (its trial is marked good, its entry loses
// panic=, check is clean), and rollback goes to the newest earlier layer
// that booted, skipping one that was only added. Boots: the first, into the
// first layer, the trial of the image base's layer, after the rollback (make
// check-long only).
func TestImageBaseLayerAndRollback(t *testing.T) {
	Parallel(t)
	g := BootLayered(t)
	b1, b2, b3 := nvr2+"+1", nvr2+"+2", nvr2+"+3"
	g.WaitStarted()

	// A base written from the image in full, as the report that found
	// the defect had it (and ~4 minutes faster under TCG than a delta).
	g.Imgbase("base", "--add", "--full", "--size", "1200M", PayloadDir+"/v2.img")
	g.Imgbase("layer", "--add", nvr2)
	fstab := g.LayerFile(b1, "etc/fstab")
	t.Logf("fstab of %s:\n%s", b1, fstab)
	if !fstabMounts(fstab, "/boot") {
		t.Errorf("the fstab of %s, a layer of the image base, does not mount /boot:\n%s", b1, fstab)
	}

	// The newest base's layer is tried at the next boot.
	g.ExpectBooted(g.Reboot(), b1, "the trial of "+b1)
	if s := g.WaitStarted(); s != "active success" {
		t.Errorf("imgbase-boot-success.service on the trial of %s: %q, want active success", b1, s)
	}
	if r, _ := g.Shell(tenMinutes, "findmnt -no SOURCE /boot"); r.ExitCode != 0 || strings.TrimSpace(r.Stdout) == "" {
		t.Errorf("/boot is not mounted in %s: %q %q", b1, r.Stdout, r.Stderr)
	}
	if d := strings.TrimSpace(g.Imgbase("boot", "--get-default")); d != b1 {
		t.Errorf("after the trial of %s, boot --get-default = %q", b1, d)
	}
	if r := g.ImgbaseResult("check"); r.ExitCode != 0 {
		t.Errorf("imgbase check in %s: exit %d\n%s%s", b1, r.ExitCode, r.Stdout, r.Stderr)
	}
	entry := g.MustRun("cat", "/boot/loader/entries/"+strings.ReplaceAll(b1, "+", "_")+".conf")
	if strings.Contains(entry, "panic=") {
		t.Errorf("the entry of %s keeps the trial's panic= after the trial succeeded:\n%s", b1, entry)
	}

	// Two more layers; the newest is made the default without booting,
	// the middle one never boots either.
	g.Imgbase("layer", "--add")
	g.Imgbase("layer", "--add")
	g.Imgbase("boot", "--set-default", b3)
	r := g.ImgbaseResult("rollback")
	t.Logf("imgbase rollback: exit %d\n%s%s", r.ExitCode, r.Stdout, r.Stderr)
	if r.ExitCode != 0 || !strings.HasPrefix(r.Stdout, b1+" is now the default") || !strings.Contains(r.Stdout, b2) {
		t.Errorf("rollback from %s: want %s (the newest that booted), skipping %s; got %q", b3, b1, b2, r.Stdout)
	}
	if d := strings.TrimSpace(g.Imgbase("boot", "--get-default")); d != b1 {
		t.Errorf("after rollback, boot --get-default = %q, want %s", d, b1)
	}
	// --to still takes a layer that never booted, with a warning.
	r = g.ImgbaseResult("rollback", "--to", b2)
	if r.ExitCode != 0 || !strings.Contains(r.Stderr, "warning: "+b2+" has never booted") {
		t.Errorf("rollback --to %s (never booted): exit %d %q %q", b2, r.ExitCode, r.Stdout, r.Stderr)
	}
	r = g.ImgbaseResult("rollback", "--to", b1)
	if r.ExitCode != 0 || strings.Contains(r.Stderr, "warning") {
		t.Errorf("rollback --to %s (booted): exit %d %q %q", b1, r.ExitCode, r.Stdout, r.Stderr)
	}
	if Long() { // TestBootLayers boots a rollback
		g.ExpectBooted(g.Reboot(), b1, "after rollback to "+b1)
		g.WaitStarted()
	}
}
