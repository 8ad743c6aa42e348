package filesystem

import (
	"context"
	"fmt"

	"github.com/imgbase/imgbase/internal/command"
)

// Grow makes the filesystem on dev, mounted at dir, fill its device after
// the device was extended. Both tools grow a mounted filesystem in place.
func (t Tools) Grow(ctx context.Context, dev, dir, fstype string) error {
	var c command.Cmd
	switch {
	case IsExt(fstype):
		c = command.Change("resize2fs", dev)
	case fstype == "xfs":
		c = command.Change("xfs_growfs", dir)
	default:
		return fmt.Errorf("cannot grow the filesystem on %s: %q is not supported (use ext4 or xfs)", dev, fstype)
	}
	if _, err := t.Run.Run(ctx, c); err != nil {
		return fmt.Errorf("cannot grow the filesystem on %s: %w", dev, err)
	}
	return nil
}
