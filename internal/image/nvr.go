package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/imgbase/imgbase/internal/command"
)

// NVRPath is where an image's build records its name-version-release
// (oVirt Node's layout).
const NVRPath = "/usr/share/imgbase/build/meta/nvr"

// maxNVR bounds what is read from the image: an NVR is one short line.
const maxNVR = 256

// NVR returns the name-version-release the image's build recorded in
// NVRPath. An image without it returns an error wrapping ErrNoNVR: the
// caller then needs the NVR given on the command line.
func (im *Image) NVR(ctx context.Context) (string, error) {
	var raw []byte
	var err error
	switch im.FSType {
	case Ext4:
		// debugfs reads the file without mounting: no loop device, no
		// journal replay. A missing file is reported on stderr with
		// exit 0, so empty output means "not there".
		raw, err = im.env.Run.Run(ctx, command.Read("debugfs", "-R", "cat "+NVRPath, im.fsPath))
	case XFS:
		raw, err = im.readMounted(ctx, NVRPath)
	default:
		return "", fmt.Errorf("cannot read the NVR of %s: %w", im.Path, ErrUnknownFormat)
	}
	if err != nil {
		return "", fmt.Errorf("cannot read the NVR of %s: %w", im.Path, err)
	}
	return parseNVR(im.Path, raw)
}

func parseNVR(path string, raw []byte) (string, error) {
	nvr := strings.TrimSpace(string(raw))
	if nvr == "" {
		return "", fmt.Errorf("cannot read the NVR of %s: %w: %s is missing or empty; give the NVR on the command line", path, ErrNoNVR, NVRPath)
	}
	if len(nvr) > maxNVR || strings.ContainsAny(nvr, "/\n\t \x00") {
		return "", fmt.Errorf("cannot read the NVR of %s: %w: %s holds %.40q, not one name-version-release; give the NVR on the command line", path, ErrNoNVR, NVRPath, nvr)
	}
	return nvr, nil
}

// readMounted reads name from the raw filesystem mounted read-only. The
// file is opened through os.Root so a symlink in the image cannot make
// imgbase read a file of the host.
func (im *Image) readMounted(ctx context.Context, name string) (_ []byte, err error) {
	if im.env.Mount == nil {
		return nil, errors.New("no way to mount the image was given")
	}
	dir, err := im.env.Mount.Mount(ctx, im.fsPath, string(im.FSType))
	if err != nil {
		return nil, err
	}
	defer func() {
		if uerr := im.env.Mount.Unmount(ctx, dir); uerr != nil && err == nil {
			err = uerr
		}
	}()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.Open(strings.TrimPrefix(name, "/"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxNVR+1))
}
