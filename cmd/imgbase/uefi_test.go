package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A Debian UEFI host: the ESP at /boot/efi (found by the mount table and
// udev's partition type), /boot ext4, systemd-boot. A layer's entry and
// kernel go to the ESP, the only place systemd-boot reads; nothing to /boot.
func TestUEFIHostWithESPAtBootEFI(t *testing.T) {
	c := newCLI(t, "init", 5)
	root := c.env.Root
	os.RemoveAll(filepath.Join(root, "boot/grub"))
	for name, content := range map[string]string{
		"boot/efi/loader/loader.conf":              "timeout 0\ndefault root.conf\n",
		"boot/efi/EFI/systemd/systemd-bootx64.efi": "efi",
		"proc/self/mountinfo": "25 1 254:5 / / rw,relatime shared:1 - ext4 /dev/mapper/HostVG-Base--1--0+1 rw\n" +
			"30 25 8:2 / /boot rw,relatime shared:2 - ext4 /dev/sda2 rw\n" +
			"31 30 8:1 / /boot/efi rw,relatime shared:3 - vfat /dev/sda1 rw,fmask=0077\n",
		"run/udev/data/b8:1":             "S:disk/by-partlabel/ESP\nE:ID_FS_TYPE=vfat\nE:ID_PART_ENTRY_TYPE=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n",
		"run/udev/data/b8:2":             "E:ID_FS_TYPE=ext4\nE:ID_PART_ENTRY_TYPE=0fc63daf-8483-4772-8e79-3d69d8477de4\n",
		"sys/firmware/efi/efivars/.keep": "",
	} {
		os.MkdirAll(filepath.Dir(filepath.Join(root, name)), 0o755)
		os.WriteFile(filepath.Join(root, name), []byte(content), 0o644)
	}
	code, out, stderr := c.run(t, "boot --status")
	if code != 0 || !strings.Contains(out, "loader: systemd-boot") {
		t.Fatalf("boot --status: %d %q %s", code, out, stderr)
	}
	if code, out, stderr := c.run(t, "layer --add Base-1-0"); code != 0 || !strings.Contains(out, "Base-1-0+2") {
		t.Fatalf("layer --add Base-1-0: %d %q %s", code, out, stderr)
	}
	for _, p := range []string{"boot/efi/loader/entries/Base-1-0_2.conf", "boot/efi/Base-1-0+2/vmlinuz-6.1.0-13-amd64", "boot/efi/Base-1-0+2/initrd.img-6.1.0-13-amd64"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	// The new layer's trial: systemd-boot's one-shot variable, written
	// through efivarfs (attributes, then UTF-16LE "Base-1-0_2.conf").
	if b, err := os.ReadFile(filepath.Join(root, "sys/firmware/efi/efivars/LoaderEntryOneShot-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f")); err != nil || len(b) < 4 ||
		strings.ReplaceAll(string(b[4:]), "\x00", "") != "Base-1-0_2.conf" {
		t.Errorf("one-shot variable: %q %v", b, err)
	}
	for _, p := range []string{"boot/loader", "boot/Base-1-0+2"} {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			t.Errorf("%s written: systemd-boot never reads the ext4 /boot", p)
		}
	}
	for _, l := range c.rec.Lines() {
		if strings.Contains(l, "PART_ENTRY_TYPE") {
			t.Errorf("asked blkid for a partition type udev knew: %s", l)
		}
	}
}
