package boot

import (
	"bytes"
	"embed"
	"fmt"
	"os"
	"path/filepath"

	"github.com/imgbase/imgbase/internal/atomicfile"
)

// SuccessUnit is the systemd unit that marks a boot good; RecoverUnit
// finishes or undoes an interrupted update at boot.
const (
	SuccessUnit = "imgbase-boot-success.service"
	RecoverUnit = "imgbase-recover.service"
)

// PackagedBinary is where the .deb and .rpm put imgbase, and so what the
// unit files name in ExecStart.
const PackagedBinary = "/usr/sbin/imgbase"

//go:embed imgbase-boot-success.service imgbase-recover.service
var units embed.FS

// unitNames are the units InstallUnits installs and UnitPaths names.
var unitNames = []string{SuccessUnit, RecoverUnit}

// vendorUnitDirs are where a distribution's package puts unit files.
var vendorUnitDirs = []string{"usr/lib/systemd/system", "lib/systemd/system"}

// UnitPaths are the files InstallUnits writes, relative to the root.
func UnitPaths() []string {
	var out []string
	for _, name := range unitNames {
		out = append(out, unitPath(name), wantsPath(name))
	}
	return append(out, HookPaths()...)
}

func unitPath(name string) string { return filepath.Join("etc/systemd/system", name) }
func wantsPath(name string) string {
	return filepath.Join("etc/systemd/system/multi-user.target.wants", name)
}

// ShipsUnits reports whether the tree at root has imgbase's units where a
// package installs them: such an image (one that carries the imgbase
// package) enabled them when it was built, and its own copies, matching its
// own binary, must win over the running system's.
func ShipsUnits(root string) bool {
	for _, name := range unitNames {
		found := false
		for _, dir := range vendorUnitDirs {
			if st, err := os.Stat(filepath.Join(root, dir, name)); err == nil && st.Mode().IsRegular() {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// InstallUnits installs and enables imgbase's units in the root directory
// of a layer whose image does not ship them, so that a trial boot of that
// layer can succeed and an interrupted update is dealt with. The kernel,
// initramfs and grub.d hooks are not among them (see hooks.go). bin is the
// absolute path, inside the layer, of the imgbase they run. dry, when set,
// receives what would be written instead.
func InstallUnits(root, bin string, dry func(string)) error {
	for _, name := range unitNames {
		if err := installUnit(root, name, bin, dry); err != nil {
			return err
		}
	}
	return nil
}

// UnitFile returns a unit's content with ExecStart naming bin.
func UnitFile(name, bin string) ([]byte, error) {
	content, err := units.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return bytes.ReplaceAll(content, []byte("ExecStart="+PackagedBinary+" "), []byte("ExecStart="+bin+" ")), nil
}

func installUnit(root, name, bin string, dry func(string)) error {
	content, err := UnitFile(name, bin)
	if err != nil {
		return err
	}
	unit := filepath.Join(root, unitPath(name))
	link := filepath.Join(root, wantsPath(name))
	if dry != nil {
		dry(unit)
		dry(link)
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return fmt.Errorf("cannot install %s: %w", name, err)
	}
	if err := atomicfile.Write(unit, content, 0o644); err != nil {
		return fmt.Errorf("cannot install %s: %w", name, err)
	}
	if target, err := os.Readlink(link); err == nil && target == "../"+name {
		return nil
	}
	os.Remove(link)
	if err := os.Symlink("../"+name, link); err != nil {
		return fmt.Errorf("cannot enable %s: %w", name, err)
	}
	return atomicfile.SyncDir(filepath.Dir(link))
}
