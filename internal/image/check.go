package image

import (
	"context"
	"fmt"

	"github.com/imgbase/imgbase/internal/command"
)

// Check runs the filesystem's own read-only checker on the raw image
// (e2fsck -fn, xfs_repair -n) and returns an error wrapping ErrCorrupt
// when it finds anything wrong. Neither tool writes with these flags.
func (im *Image) Check(ctx context.Context) error {
	var c command.Cmd
	switch im.FSType {
	case Ext4:
		c = command.Read("e2fsck", "-fn", im.fsPath)
	case XFS:
		c = command.Read("xfs_repair", "-n", "-f", im.fsPath)
	default:
		return fmt.Errorf("cannot check %s: %w", im.Path, ErrUnknownFormat)
	}
	if _, err := im.env.Run.Run(ctx, c); err != nil {
		if command.ExitCode(err) > 0 {
			return fmt.Errorf("cannot use image %s: %w: %w; rebuild or download it again", im.Path, ErrCorrupt, err)
		}
		return fmt.Errorf("cannot check %s: %w", im.Path, err)
	}
	return nil
}
