package lvm

import (
	"context"
	"fmt"
	"strconv"

	"github.com/imgbase/imgbase/internal/command"
)

// Extend grows an LV to size bytes; lvm2 rounds up to whole extents.
func (c Client) Extend(ctx context.Context, vg, name string, size uint64) error {
	if _, err := c.Run.Run(ctx, command.Change("lvextend", "--size", strconv.FormatUint(size, 10)+"b", vg+"/"+name)); err != nil {
		return fmt.Errorf("cannot grow %s/%s: %w", vg, name, err)
	}
	return nil
}
