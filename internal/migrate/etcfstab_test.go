package migrate

import (
	"path/filepath"
	"testing"
)

// volumeOwned is what the host passes: the volumes' mount points.
func volumeOwned(f []string) bool { return f[1] == "/var" || f[1] == "/boot" }

func fstabFixture(t *testing.T, old, running, image string) *fixture {
	f := newFixture(t)
	f.roots.FstabOwned = volumeOwned
	writeFile(t, filepath.Join(f.old, "etc/fstab"), old, 0o644)
	writeFile(t, filepath.Join(f.running, "etc/fstab"), running, 0o644)
	writeFile(t, filepath.Join(f.newL, "etc/fstab"), image, 0o644)
	return f
}

const (
	oldFstab = "# v1\nUUID=v1 / ext4 errors=remount-ro 0 1\ntmpfs /tmp tmpfs defaults 0 0\n"
	// What imgbase made of it in the running layer: its / line, a volume,
	// the host's /boot.
	runFstab = "# v1\n/dev/HostVG/L / ext4 errors=remount-ro,discard 0 1\ntmpfs /tmp tmpfs defaults 0 0\n" +
		"/dev/HostVG/var /var ext4 defaults,discard 0 2\nLABEL=boot /boot ext4 defaults 0 2\n"
	newFstab = "# v2\nUUID=v2 / ext4 errors=remount-ro 0 1\ntmpfs /tmp tmpfs defaults,size=1G 0 0\n"
)

// imgbase's own lines are not the admin's change: the image's new fstab
// is taken, with no conflict and no fstab.imgnew.
func TestFstabImgbaseLinesAreNotTheAdmins(t *testing.T) {
	f := fstabFixture(t, oldFstab, runFstab, newFstab)
	rep := f.run()
	if rep.Conflicted() {
		t.Fatalf("conflicts %+v, though the admin never touched fstab", rep.Conflicts)
	}
	assertMissing(t, filepath.Join(f.newL, "etc/fstab.imgnew"))
	assertContent(t, filepath.Join(f.newL, "etc/fstab"), newFstab)
	if !has(rep.Taken, "/etc/fstab") {
		t.Errorf("taken = %v, want /etc/fstab", rep.Taken)
	}
}

// The admin's own lines are carried onto the image's fstab; a line the
// admin removed stays removed.
func TestFstabAdminLinesCarried(t *testing.T) {
	image := newFstab + "proc /proc proc defaults 0 0\n"
	old := oldFstab + "proc /proc proc defaults 0 0\n"
	running := runFstab + "nfs:/x /mnt/x nfs defaults 0 0\n"
	f := fstabFixture(t, old, running, image)
	rep := f.run()
	if rep.Conflicted() {
		t.Fatalf("conflicts %+v", rep.Conflicts)
	}
	assertMissing(t, filepath.Join(f.newL, "etc/fstab.imgnew"))
	assertContent(t, filepath.Join(f.newL, "etc/fstab"), newFstab+"nfs:/x /mnt/x nfs defaults 0 0\n")
	if !has(rep.Kept, "/etc/fstab") {
		t.Errorf("kept = %v, want /etc/fstab", rep.Kept)
	}
}

// A mount both changed: the admin's line wins in place, the image's fstab
// is put aside, and that is a conflict.
func TestFstabMountChangedByBoth(t *testing.T) {
	running := "# v1\n/dev/HostVG/L / ext4 errors=remount-ro,discard 0 1\ntmpfs /tmp tmpfs defaults,size=2G 0 0\n"
	f := fstabFixture(t, oldFstab, running, newFstab)
	rep := f.run()
	c := conflictAt(rep, "/etc/fstab")
	if c == nil || c.ImageCopy != "/etc/fstab.imgnew" {
		t.Fatalf("conflict = %+v", c)
	}
	assertContent(t, filepath.Join(f.newL, "etc/fstab"), "# v2\nUUID=v2 / ext4 errors=remount-ro 0 1\ntmpfs /tmp tmpfs defaults,size=2G 0 0\n")
	assertContent(t, filepath.Join(f.newL, "etc/fstab.imgnew"), newFstab)
}
