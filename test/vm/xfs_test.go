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
// The host still runs the ext4 root it was installed on.
func TestUpdateXFS(t *testing.T) {
	t.Parallel()
	g := Boot(t)
	layer := nvr2 + "+1"
	g.Imgbase("layout", "--init")
	g.MustShell("echo 'admin=xfs' >>/etc/imgbase-test.conf")
	t.Logf("imgbase update %s:\n%s", v2xfs, g.Imgbase("update", v2xfs))
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
