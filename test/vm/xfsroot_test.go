//go:build vm

package vm

import (
	"strings"
	"testing"
)

// A host whose root is XFS, as EL installs it: the layout made from a
// mounted XFS root (the base is a snapshot of a live filesystem, the first
// layer gets a UUID of its own through a log replay), the boot into that
// layer, a layer of the running XFS layer (its snapshot's log is dirty and
// its origin is mounted with the same UUID), and an update whose /etc merge
// reads the XFS base and layer (its layer's trial boot: make check-long).
func TestXFSRoot(t *testing.T) {
	Parallel(t)
	g := Boot(t)
	// An XFS copy of the running root on a thin LV of the pool, mounted
	// and written to as a running root is.
	g.MustShell(`set -e
lvcreate -q --thin --virtualsize 3G --name xfsroot HostVG/pool00
mkfs.xfs -q /dev/HostVG/xfsroot
mkdir -p /mnt/xfsroot
mount /dev/HostVG/xfsroot /mnt/xfsroot
cp -ax /. /mnt/xfsroot/
echo 'admin=xfsroot' >>/mnt/xfsroot/etc/imgbase-test.conf`)
	rootUUID := strings.TrimSpace(g.MustRun("blkid", "-s", "UUID", "-o", "value", "/dev/HostVG/xfsroot"))

	l1, l2 := "Base-1-0+1", "Base-1-0+2"
	t.Logf("imgbase layout --init Base-1-0 --from HostVG/xfsroot:\n%s", g.Imgbase("layout", "--init", "Base-1-0", "--from", "HostVG/xfsroot"))
	lvs := g.LVs()
	checkBase(t, lvs, "Base-1-0")
	checkLayer(t, lvs, l1, "Base-1-0")
	if !lvs["xfsroot"].HasTag("imgbased:init") {
		t.Errorf("xfsroot tags %q, want imgbased:init", lvs["xfsroot"].TagList)
	}
	uuids := map[string]string{"xfsroot": rootUUID, "Base-1-0": g.BaseUUID("Base-1-0")}
	uuids[l1] = checkLayerFS(t, g, l1, uuids)
	if fstab := g.LayerFile(l1, "etc/fstab"); !strings.Contains(fstab, " xfs ") {
		t.Errorf("the fstab of %s does not mount / as xfs:\n%s", l1, fstab)
	}
	g.MustRun("umount", "/mnt/xfsroot")

	g.ExpectBooted(g.Reboot(), l1, "the XFS layer made by layout --init")
	if got := strings.Fields(g.MustRun("findmnt", "-no", "FSTYPE,UUID", "/")); len(got) != 2 || got[0] != "xfs" || got[1] != uuids[l1] {
		t.Errorf("/ is %v, want xfs %s", got, uuids[l1])
	}
	if conf := g.MustRun("cat", "/etc/imgbase-test.conf"); !strings.Contains(conf, "admin=xfsroot") {
		t.Errorf("the XFS layer lacks the root's contents:\n%s", conf)
	}

	// A layer of the running XFS layer.
	g.MustShell("echo 'admin=layer' >>/etc/imgbase-test.conf")
	t.Logf("imgbase layer --add:\n%s", g.Imgbase("layer", "--add"))
	lvs = g.LVs()
	checkLayer(t, lvs, l2, "Base-1-0")
	uuids[l2] = checkLayerFS(t, g, l2, uuids)
	if conf := g.LayerFile(l2, "etc/imgbase-test.conf"); !strings.Contains(conf, "admin=layer") {
		t.Errorf("%s, a snapshot of the running layer, lacks its last change:\n%s", l2, conf)
	}

	// An update from the XFS layer: /etc is carried out of it.
	layer := nvr2 + "+1"
	t.Logf("imgbase update %s:\n%s", v2img, g.Imgbase("update", v2img))
	checkLayer(t, g.LVs(), layer, nvr2)
	// The merge is seen in the new layer; its trial boot, like that of
	// every other update's layer, is make check-long's here.
	conf := g.LayerFile(layer, "etc/imgbase-test.conf")
	version := g.LayerFile(layer, "usr/share/imgbase-test/version")
	if Long() {
		g.ExpectBooted(g.Reboot(), layer, "the update's trial boot from the XFS layer")
		if s := g.WaitStarted(); s != "active success" {
			t.Errorf("imgbase-boot-success.service on the trial boot: %q, want active success", s)
		}
		conf = g.MustRun("cat", "/etc/imgbase-test.conf")
		version = g.MustRun("cat", "/usr/share/imgbase-test/version")
	}
	if !strings.Contains(conf, "admin=xfsroot") || !strings.Contains(conf, "admin=layer") {
		t.Errorf("the admin's changes were not carried out of the XFS layer:\n%s", conf)
	}
	if v := strings.TrimSpace(version); v != "2.0" {
		t.Errorf("the new layer holds version %q, want 2.0", v)
	}
}
