//go:build vm

package vm

import (
	"strings"
	"testing"
)

const v2xfs = PayloadDir + "/v2-xfs.img"

// An update from an XFS image (the v2 files): the base and its layer hold
// XFS, the layer has a filesystem UUID of its own and an fstab naming it
// as an XFS /, the admin's change is carried over, and the layer boots.
// The host still runs the ext4 root it was installed on. A full /boot and
// the admin's update hooks are tried first.
func TestUpdateXFS(t *testing.T) {
	Parallel(t)
	g := Boot(t)
	layer := nvr2 + "+1"
	g.Imgbase("layout", "--init")
	g.MustShell("echo 'admin=xfs' >>/etc/imgbase-test.conf")

	// /boot too full for the new layer's kernel files: refused with the
	// figures and what to do, nothing made.
	before := LVNames(g.LVs())
	g.MustShell(`fallocate -l $(( $(df --output=avail -B1 /boot | tail -1) - 4*1024*1024 )) /boot/imgbase-test.fill`)
	r := g.ImgbaseResult("update", v2xfs)
	t.Logf("imgbase update with /boot full: exit %d: %s", r.ExitCode, r.Stderr)
	// The base whose layer boots by default is not offered for removal.
	if r.ExitCode != 1 || !strings.Contains(r.Stderr, "/boot: need ") || !strings.Contains(r.Stderr, "free space on /boot") || strings.Contains(r.Stderr, "remove "+nvr1) {
		t.Errorf("update with /boot full: exit %d, stderr %q; want 1 with the /boot figures", r.ExitCode, r.Stderr)
	}
	if after := LVNames(g.LVs()); after != before {
		t.Errorf("an update refused for /boot changed the LVs:\n  %s\nwant\n  %s", after, before)
	}
	g.MustRun("rm", "/boot/imgbase-test.fill")

	// The admin's hooks: a failing pre-update hook stops the update before
	// anything is made; a failing post-update hook is reported, the update
	// stands. Both get the names as arguments.
	g.MustShell(`set -e
d=/etc/imgbased/hooks.d
mkdir -p $d/pre-update $d/post-update
printf '#!/bin/sh\necho "not today" >&2\nexit 3\n' >$d/pre-update/10-veto
chmod +x $d/pre-update/10-veto`)
	if r := g.ImgbaseResult("update", v2xfs); r.ExitCode != 1 || !strings.Contains(r.Stderr, "10-veto") {
		t.Errorf("update with a failing pre-update hook: exit %d, stderr %q; want 1 naming the hook", r.ExitCode, r.Stderr)
	}
	if after := LVNames(g.LVs()); after != before {
		t.Errorf("a vetoed update changed the LVs:\n  %s\nwant\n  %s", after, before)
	}
	g.MustShell(`set -e
d=/etc/imgbased/hooks.d
rm $d/pre-update/10-veto
printf '#!/bin/sh\necho "$@" >/run/pre-update.args\n' >$d/pre-update/10-record
printf '#!/bin/sh\necho "$@" >/run/post-update.args\nexit 1\n' >$d/post-update/10-record
chmod +x $d/pre-update/10-record $d/post-update/10-record`)
	r = g.ImgbaseResult("update", v2xfs)
	t.Logf("imgbase update %s: exit %d\n%s%s", v2xfs, r.ExitCode, r.Stdout, r.Stderr)
	if r.ExitCode != 0 {
		t.Fatalf("update with a failing post-update hook: exit %d, want 0", r.ExitCode)
	}
	if !strings.Contains(r.Stderr, "post hook failed") {
		t.Errorf("the failing post-update hook is not reported: %q", r.Stderr)
	}
	if a := strings.TrimSpace(g.MustRun("cat", "/run/pre-update.args")); a != nvr2+" "+v2xfs {
		t.Errorf("pre-update hook got %q, want %q", a, nvr2+" "+v2xfs)
	}
	if a := strings.TrimSpace(g.MustRun("cat", "/run/post-update.args")); a != nvr2+" "+layer {
		t.Errorf("post-update hook got %q, want %q", a, nvr2+" "+layer)
	}
	lvs := g.LVs()
	checkBase(t, lvs, nvr2)
	checkLayer(t, lvs, layer, nvr2)
	if fs := strings.TrimSpace(g.MustRun("blkid", "-s", "TYPE", "-o", "value", "/dev/"+vg+"/"+layer)); fs != "xfs" {
		t.Errorf("layer %s holds %q, want xfs", layer, fs)
	}
	uuid := checkLayerFS(t, g, layer, map[string]string{nvr2: g.BaseUUID(nvr2)})
	if fstab := g.LayerFile(layer, "etc/fstab"); !strings.Contains(fstab, " xfs ") {
		t.Errorf("the fstab of %s does not mount / as xfs:\n%s", layer, fstab)
	}
	if r := g.ImgbaseResult("check"); r.ExitCode != 0 {
		t.Errorf("imgbase check after the update: exit %d\n%s%s", r.ExitCode, r.Stdout, r.Stderr)
	}

	g.ExpectBooted(g.Reboot(), layer, "the XFS layer's trial boot")
	if s := g.WaitStarted(); s != "active success" {
		t.Errorf("imgbase-boot-success.service on the XFS layer's trial boot: %q, want active success", s)
	}
	if got := strings.Fields(g.MustRun("findmnt", "-no", "FSTYPE,UUID", "/")); len(got) != 2 || got[0] != "xfs" || got[1] != uuid {
		t.Errorf("/ is %v, want xfs %s", got, uuid)
	}
	if conf := g.MustRun("cat", "/etc/imgbase-test.conf"); !strings.Contains(conf, "admin=xfs") {
		t.Errorf("the admin's change was not carried into the XFS layer:\n%s", conf)
	}
	if v := strings.TrimSpace(g.MustRun("cat", "/usr/share/imgbase-test/version")); v != "2.0" {
		t.Errorf("the XFS layer runs version %q, want 2.0", v)
	}
	if d := strings.TrimSpace(g.Imgbase("boot", "--get-default")); d != layer {
		t.Errorf("after the trial boot, boot --get-default = %q, want %s", d, layer)
	}
}
