package lvm

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/imgbase/imgbase/internal/command"
)

// Client runs lvm2 commands. Every method is exactly one lvm2 process, so
// callers can count what an operation costs.
type Client struct {
	Run command.Runner
}

// Report reads every LV of every VG in one lvs call.
func (c Client) Report(ctx context.Context) ([]LV, error) {
	out, err := c.Run.Run(ctx, command.Read("lvs", "--reportformat", "json", "--units", "b", "--nosuffix",
		"-o", strings.Join(ReportFields, ",")))
	if err != nil {
		return nil, fmt.Errorf("cannot list logical volumes: %w", err)
	}
	return Decode(out)
}

// SnapshotOpts describes a new thin snapshot.
type SnapshotOpts struct {
	Tags []string
	// SkipActivation sets (true) or clears (false) the activation skip
	// flag; a thin snapshot otherwise inherits its origin's.
	SkipActivation bool
	ReadOnly       bool
	Activate       bool
}

// Snapshot creates a thin snapshot name of vg/origin.
func (c Client) Snapshot(ctx context.Context, vg, origin, name string, o SnapshotOpts) error {
	argv := []string{"lvcreate", "--snapshot", "--name", name}
	argv = appendTags(argv, o.Tags)
	argv = append(argv, "--setactivationskip", yn(o.SkipActivation))
	if o.ReadOnly {
		argv = append(argv, "--permission", "r")
	}
	// A skipped LV is only activated with --ignoreactivationskip.
	if o.Activate {
		argv = append(argv, "--activate", "y")
		if o.SkipActivation {
			argv = append(argv, "--ignoreactivationskip")
		}
	} else {
		argv = append(argv, "--activate", "n")
	}
	argv = append(argv, vg+"/"+origin)
	if _, err := c.Run.Run(ctx, command.Change(argv...)); err != nil {
		return fmt.Errorf("cannot create snapshot %s of %s/%s: %w", name, vg, origin, err)
	}
	return nil
}

// CreateThin creates an active, writable thin LV of size bytes in vg/pool.
func (c Client) CreateThin(ctx context.Context, vg, pool, name string, size uint64, tags []string) error {
	argv := []string{"lvcreate", "--thin", "--virtualsize", strconv.FormatUint(size, 10) + "b", "--name", name}
	argv = appendTags(argv, tags)
	argv = append(argv, vg+"/"+pool)
	if _, err := c.Run.Run(ctx, command.Change(argv...)); err != nil {
		return fmt.Errorf("cannot create thin volume %s/%s: %w", vg, name, err)
	}
	return nil
}

// ExtendPool grows a thin pool's data and metadata by at least the bytes
// given (lvm2 rounds up to whole extents); a zero leaves that part alone.
func (c Client) ExtendPool(ctx context.Context, vg, pool string, data, metadata int64) error {
	argv := []string{"lvextend"}
	if data > 0 {
		argv = append(argv, "--size", "+"+strconv.FormatInt(data, 10)+"b")
	}
	if metadata > 0 {
		argv = append(argv, "--poolmetadatasize", "+"+strconv.FormatInt(metadata, 10)+"b")
	}
	if len(argv) == 1 {
		return nil
	}
	argv = append(argv, vg+"/"+pool)
	if _, err := c.Run.Run(ctx, command.Change(argv...)); err != nil {
		return fmt.Errorf("cannot grow thin pool %s/%s: %w", vg, pool, err)
	}
	return nil
}

// Seal makes an LV what a complete base is: read-only, skipped on
// activation, and inactive.
func (c Client) Seal(ctx context.Context, vg, name string) error {
	if _, err := c.Run.Run(ctx, command.Change("lvchange", "--permission", "r", "--setactivationskip", "y",
		"--activate", "n", vg+"/"+name)); err != nil {
		return fmt.Errorf("cannot make %s/%s read-only: %w", vg, name, err)
	}
	return nil
}

// AddLVTag tags one LV.
func (c Client) AddLVTag(ctx context.Context, vg, name, tag string) error {
	if _, err := c.Run.Run(ctx, command.Change("lvchange", "--addtag", tag, vg+"/"+name)); err != nil {
		return fmt.Errorf("cannot tag %s/%s with %s: %w", vg, name, tag, err)
	}
	return nil
}

// DelLVTag removes a tag from one LV.
func (c Client) DelLVTag(ctx context.Context, vg, name, tag string) error {
	if _, err := c.Run.Run(ctx, command.Change("lvchange", "--deltag", tag, vg+"/"+name)); err != nil {
		return fmt.Errorf("cannot untag %s/%s: %w", vg, name, err)
	}
	return nil
}

// AddVGTag tags a volume group.
func (c Client) AddVGTag(ctx context.Context, vg, tag string) error {
	if _, err := c.Run.Run(ctx, command.Change("vgchange", "--addtag", tag, vg)); err != nil {
		return fmt.Errorf("cannot tag volume group %s with %s: %w", vg, tag, err)
	}
	return nil
}

// DelVGTag removes a tag from a volume group.
func (c Client) DelVGTag(ctx context.Context, vg, tag string) error {
	if _, err := c.Run.Run(ctx, command.Change("vgchange", "--deltag", tag, vg)); err != nil {
		return fmt.Errorf("cannot untag volume group %s: %w", vg, err)
	}
	return nil
}

// Remove removes LVs of vg in one lvremove call.
func (c Client) Remove(ctx context.Context, vg string, names ...string) error {
	argv := []string{"lvremove", "--yes"}
	for _, n := range names {
		argv = append(argv, vg+"/"+n)
	}
	if _, err := c.Run.Run(ctx, command.Change(argv...)); err != nil {
		return fmt.Errorf("cannot remove %s: %w", strings.Join(names, ", "), err)
	}
	return nil
}

// Activate activates an LV even when it has the activation skip flag.
func (c Client) Activate(ctx context.Context, vg, name string) error {
	argv := []string{"lvchange", "--activate", "y", "--ignoreactivationskip", vg + "/" + name}
	if _, err := c.Run.Run(ctx, command.Change(argv...)); err != nil {
		return fmt.Errorf("cannot activate %s/%s: %w", vg, name, err)
	}
	return nil
}

// Deactivate deactivates an LV.
func (c Client) Deactivate(ctx context.Context, vg, name string) error {
	if _, err := c.Run.Run(ctx, command.Change("lvchange", "--activate", "n", vg+"/"+name)); err != nil {
		return fmt.Errorf("cannot deactivate %s/%s: %w", vg, name, err)
	}
	return nil
}

func appendTags(argv, tags []string) []string {
	for _, t := range tags {
		argv = append(argv, "--addtag", t)
	}
	return argv
}

func yn(b bool) string {
	if b {
		return "y"
	}
	return "n"
}
