package image

import (
	"context"
	"fmt"
	"os"

	"github.com/imgbase/imgbase/internal/command"
)

// Mounter mounts an image file read-only somewhere only the caller uses.
type Mounter interface {
	// Mount mounts the filesystem of type fstype in the file source
	// read-only and returns the directory it is mounted on.
	Mount(ctx context.Context, source, fstype string) (dir string, err error)
	// Unmount undoes Mount and removes the directory.
	Unmount(ctx context.Context, dir string) error
}

// LoopMounter mounts through loop devices with mount(8).
//
// Its commands are command.Read on purpose: a read-only loop mount of a
// file in a private directory changes nothing that outlives the run, and
// a dry run has to look inside the image to say what it would install.
type LoopMounter struct {
	Run command.Runner
	// TempDir is where mount points are made; "" means os.TempDir().
	TempDir string
}

func (m LoopMounter) Mount(ctx context.Context, source, fstype string) (string, error) {
	dir, err := os.MkdirTemp(m.TempDir, "imgbase-image-")
	if err != nil {
		return "", fmt.Errorf("cannot mount %s: %w", source, err)
	}
	opts := "loop,ro"
	if fstype == string(XFS) {
		// An image may carry a dirty log; replaying it would need a
		// writable device, and reading a file or two does not need it.
		opts += ",norecovery"
	}
	if _, err := m.Run.Run(ctx, command.Read("mount", "-o", opts, "-t", fstype, source, dir)); err != nil {
		os.Remove(dir)
		return "", fmt.Errorf("cannot mount %s: %w", source, err)
	}
	return dir, nil
}

func (m LoopMounter) Unmount(ctx context.Context, dir string) error {
	if _, err := m.Run.Run(ctx, command.Read("umount", dir)); err != nil {
		return fmt.Errorf("cannot unmount %s: %w", dir, err)
	}
	if err := os.Remove(dir); err != nil {
		return fmt.Errorf("cannot remove mount point: %w", err)
	}
	return nil
}
