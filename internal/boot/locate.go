package boot

import (
	"os"
	"path/filepath"
)

// Partition type GUIDs of the Boot Loader Specification's two partitions.
const (
	ESPType      = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
	XBOOTLDRType = "bc13c2ff-59e6-4262-a352-b275fd6f7172"
)

// Mount is what the mount table (and udev) says of a mount point.
type Mount struct {
	FSType string
	// PartType is the GPT partition type GUID, lowercase; "" when unknown.
	PartType string
}

// Mounts says whether dir, a path as the running system sees it ("/efi"),
// is a mount point, and of what. A nil Mounts means the mount table could
// not be read.
type Mounts func(dir string) (Mount, bool)

// Places is where the loader and imgbase's files for it are.
type Places struct {
	Loader  Loader
	GrubDir string
	// Boot holds loader/entries, the status record and the layers' kernels
	// (<Boot>/<layer>/): /boot for GRUB; for systemd-boot the XBOOTLDR
	// partition when there is one, else the ESP, the only two places it
	// reads entries and kernels from.
	Boot string
	// ESP holds systemd-boot's loader/loader.conf (the default); "" for
	// GRUB, and Boot unless an XBOOTLDR partition is mounted at /boot.
	ESP string
}

// espMounts are where systemd's bootctl looks for the ESP, in its order.
var espMounts = []string{"/efi", "/boot", "/boot/efi"}

// Locate finds the loader of the system at root ("/", or a test's tree):
// GRUB in /boot (see Detect) first, else systemd-boot on the ESP, found as
// bootctl finds it: the first of /efi, /boot, /boot/efi that is a mount
// point of the ESP's partition type (or, the type unknown, a FAT
// filesystem with an EFI or loader directory); entries then go to the
// XBOOTLDR partition when /boot is one, else to the ESP. With mounts nil
// (no mount table), a loader/loader.conf in one of those directories is
// taken at its word.
func Locate(root string, mounts Mounts) Places {
	bootDir := filepath.Join(root, "boot")
	if l, dir := Detect(bootDir); l == GrubMenu || l == GrubBLS {
		return Places{Loader: l, GrubDir: dir, Boot: bootDir}
	}
	esp := findESP(root, mounts)
	if esp == "" || !systemdBootOn(esp) {
		return Places{Loader: LoaderNone, Boot: bootDir}
	}
	p := Places{Loader: SystemdBoot, Boot: esp, ESP: esp}
	if esp != bootDir && mounts != nil {
		if mt, ok := mounts("/boot"); ok && mt.PartType == XBOOTLDRType {
			p.Boot = bootDir
		}
	}
	return p
}

func findESP(root string, mounts Mounts) string {
	for _, c := range espMounts {
		dir := filepath.Join(root, c)
		if mounts == nil {
			if exists(filepath.Join(dir, "loader", "loader.conf")) {
				return dir
			}
			continue
		}
		mt, ok := mounts(c)
		if !ok {
			continue
		}
		switch {
		case mt.PartType == ESPType:
			return dir
		case mt.PartType == "" && mt.FSType == "vfat" &&
			(exists(filepath.Join(dir, "EFI")) || exists(filepath.Join(dir, "loader"))):
			return dir
		}
	}
	return ""
}

// systemdBootOn says whether systemd-boot is installed on the ESP: bootctl
// install writes both its binary and loader.conf.
func systemdBootOn(esp string) bool {
	return exists(filepath.Join(esp, "loader", "loader.conf")) || exists(filepath.Join(esp, "EFI", "systemd"))
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
