package host

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/imgbase/imgbase/internal/boot"
)

// The partition type comes from udev's database, else from blkid; a mount
// point shadowed by a later mount is what the later one mounts.
func TestBootMounts(t *testing.T) {
	f := newFixture(t, "init", 254, 5)
	root := f.h.Root
	os.MkdirAll(filepath.Join(root, "proc/self"), 0o755)
	os.WriteFile(filepath.Join(root, "proc/self/mountinfo"), []byte(
		"25 1 254:5 / / rw - ext4 /dev/mapper/HostVG-Base--1--0+1 rw\n"+
			"30 25 8:2 / /boot rw - ext4 /dev/sda2 rw\n"+
			"31 30 8:1 / /efi rw - vfat /dev/sda1 rw\n"+
			"32 30 8:3 / /efi rw - vfat /dev/sda3 rw\n"), 0o644)
	os.MkdirAll(filepath.Join(root, "run/udev/data"), 0o755)
	os.WriteFile(filepath.Join(root, "run/udev/data/b8:2"), []byte("E:ID_PART_ENTRY_TYPE=BC13C2FF-59E6-4262-A352-B275FD6F7172\n"), 0o644)
	f.rec.On("blkid -p -o value -s PART_ENTRY_TYPE /dev/sda3", "c12a7328-f81f-11d2-ba4b-00a0c93ec93b\n", nil)
	mounts := f.h.BootMounts(context.Background())
	if mounts == nil {
		t.Fatal("no mount table")
	}
	if m, ok := mounts("/boot"); !ok || m != (boot.Mount{FSType: "ext4", PartType: boot.XBOOTLDRType}) {
		t.Errorf("/boot: %+v %v", m, ok)
	}
	if m, ok := mounts("/efi"); !ok || m != (boot.Mount{FSType: "vfat", PartType: boot.ESPType}) {
		t.Errorf("/efi: %+v %v", m, ok)
	}
	if _, ok := mounts("/boot/efi"); ok {
		t.Errorf("/boot/efi is no mount point")
	}

	os.Remove(filepath.Join(root, "proc/self/mountinfo"))
	if f.h.BootMounts(context.Background()) != nil {
		t.Errorf("no mount table, yet a Mounts")
	}
}
