//go:build vm

package vm

import (
	"archive/tar"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"
)

// ImgbasePath is where the package installs imgbase in the guest.
const ImgbasePath = "/usr/sbin/imgbase"

// guestDeb is where InstallPackage puts the .deb in the guest.
const guestDeb = "/var/tmp/imgbase-test.deb"

// Package is the imgbase .deb under test, as the guests install it.
type Package struct {
	Path string
	// data is the .deb as read once: a later `make package` may replace
	// the file while tests run.
	data []byte
	// BinMD5 is the md5 of /usr/sbin/imgbase inside the package: a guest
	// whose binary matches has this package installed already (a layer
	// made from a base that had it).
	BinMD5 string
}

// OpenPackage reads what InstallPackage needs from the .deb at path.
func OpenPackage(path string) (*Package, error) {
	cmd := exec.Command("dpkg-deb", "--fsys-tarfile", path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	defer cmd.Wait()
	tr := tar.NewReader(out)
	for {
		h, err := tr.Next()
		if err != nil {
			return nil, fmt.Errorf("cannot find %s in %s: %w", ImgbasePath, path, err)
		}
		if h.Name == "."+ImgbasePath {
			sum := md5.New()
			if _, err := io.Copy(sum, tr); err != nil {
				return nil, fmt.Errorf("cannot read %s: %w", path, err)
			}
			io.Copy(io.Discard, out)
			data, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("cannot read %s: %w", path, err)
			}
			return &Package{Path: path, data: data, BinMD5: hex.EncodeToString(sum.Sum(nil))}, nil
		}
	}
}

// InstallPackage installs the package with dpkg -i, as an admin would,
// unless the running root has it already. Every boot needs this: a layer
// of an image without imgbase only has the copy imgbase put there.
func (m *Machine) InstallPackage(p *Package) error {
	r, err := m.Shell(time.Minute, fmt.Sprintf("echo '%s  %s' | md5sum -c --status", p.BinMD5, ImgbasePath))
	if err == nil && r.ExitCode == 0 {
		return nil
	}
	if err := m.WriteFile(guestDeb, p.data, 0o644); err != nil {
		return err
	}
	r, err = m.Run(5*time.Minute, "dpkg", "-i", guestDeb)
	if err == nil && r.ExitCode != 0 {
		err = fmt.Errorf("exit %d: %s%s", r.ExitCode, r.Stdout, r.Stderr)
	}
	if err != nil {
		return fmt.Errorf("cannot install %s in the guest: %w", p.Path, err)
	}
	return nil
}

// PackagedImage makes dst, in the guest, a copy of the raw image src with
// the package installed into it the way a vendor's image build would
// (dpkg -i in a chroot of the image), so that the image ships imgbase.
func (m *Machine) PackagedImage(p *Package, src, dst string) error {
	if err := m.WriteFile(guestDeb, p.data, 0o644); err != nil {
		return err
	}
	r, err := m.Shell(10*time.Minute, fmt.Sprintf(`set -e
cp --sparse=always '%[1]s' '%[2]s'
M=$(mktemp -d)
mount -o loop '%[2]s' "$M"
trap 'umount "$M"; rmdir "$M"' EXIT
cp '%[3]s' "$M/tmp/imgbase.deb"
chroot "$M" dpkg -i /tmp/imgbase.deb
rm "$M/tmp/imgbase.deb"`, src, dst, guestDeb))
	if err == nil && r.ExitCode != 0 {
		err = fmt.Errorf("exit %d: %s%s", r.ExitCode, r.Stdout, r.Stderr)
	}
	if err != nil {
		return fmt.Errorf("cannot make a packaged copy of %s: %w", src, err)
	}
	return nil
}
