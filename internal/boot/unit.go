package boot

import (
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

//go:embed imgbase-boot-success.service imgbase-recover.service
var units embed.FS

// unitNames are the units InstallUnits installs and UnitPaths names.
var unitNames = []string{SuccessUnit, RecoverUnit}

// UnitPaths are the files InstallUnits writes, relative to the root.
func UnitPaths() []string {
	var out []string
	for _, name := range unitNames {
		out = append(out, unitPath(name), wantsPath(name))
	}
	return out
}

func unitPath(name string) string { return filepath.Join("etc/systemd/system", name) }
func wantsPath(name string) string {
	return filepath.Join("etc/systemd/system/multi-user.target.wants", name)
}

// InstallUnits installs and enables imgbase's units in the root directory
// of a layer, so that a trial boot of that layer can succeed and an
// interrupted update is dealt with. dry, when set, receives what would be
// written instead.
func InstallUnits(root string, dry func(string)) error {
	for _, name := range unitNames {
		if err := installUnit(root, name, dry); err != nil {
			return err
		}
	}
	return nil
}

func installUnit(root, name string, dry func(string)) error {
	content, err := units.ReadFile(name)
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
