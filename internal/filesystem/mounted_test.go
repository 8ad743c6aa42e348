package filesystem

import (
	"os/exec"
	"strings"
	"testing"
)

// TestMountedAgreesWithFindmnt compares the superblock read through sysfs
// with findmnt's answer for the directories of this machine that sit on
// ext or XFS.
func TestMountedAgreesWithFindmnt(t *testing.T) {
	checked := 0
	for _, dir := range []string{"/", "/boot", "/tmp", t.TempDir()} {
		out, err := exec.Command("findmnt", "-n", "-o", "UUID,FSTYPE", "--target", dir).Output()
		f := strings.Fields(string(out))
		if err != nil || len(f) != 2 || !(IsExt(f[1]) || f[1] == "xfs") {
			continue
		}
		sb, ok := Mounted(dir)
		if !ok || sb.UUID != f[0] || sb.Type != f[1] {
			t.Errorf("%s: read %+v (ok %v), findmnt says %s", dir, sb, ok, out)
		}
		checked++
	}
	if checked == 0 {
		t.Skip("no directory here on ext or XFS with a UUID findmnt reports")
	}
}
