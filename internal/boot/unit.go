package boot

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"

	"github.com/imgbase/imgbase/internal/atomicfile"
)

// SuccessUnit is the systemd unit that marks a boot good.
const SuccessUnit = "imgbase-boot-success.service"

//go:embed imgbase-boot-success.service
var successUnit []byte

// InstallSuccessUnit installs and enables the success unit in the root
// directory of a layer, so that a trial boot of that layer can succeed.
// dry, when set, receives what would be written instead.
func InstallSuccessUnit(root string, dry func(string)) error {
	unit := filepath.Join(root, "etc/systemd/system", SuccessUnit)
	link := filepath.Join(root, "etc/systemd/system/multi-user.target.wants", SuccessUnit)
	if dry != nil {
		dry(unit)
		dry(link)
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return fmt.Errorf("cannot install %s: %w", SuccessUnit, err)
	}
	if err := atomicfile.Write(unit, successUnit, 0o644); err != nil {
		return fmt.Errorf("cannot install %s: %w", SuccessUnit, err)
	}
	if target, err := os.Readlink(link); err == nil && target == "../"+SuccessUnit {
		return nil
	}
	os.Remove(link)
	if err := os.Symlink("../"+SuccessUnit, link); err != nil {
		return fmt.Errorf("cannot enable %s: %w", SuccessUnit, err)
	}
	return atomicfile.SyncDir(filepath.Dir(link))
}
