// Package thinls reads how many bytes each thin volume of a pool maps, and
// how many of them no other volume shares, from thin_ls
// (thin-provisioning-tools).
//
// thin_ls cannot read the metadata of a live pool consistently: the kernel
// keeps changing it. It reads a metadata snapshot instead, which the pool
// takes and drops on a dmsetup message; one pool holds at most one, so Read
// always releases the one it reserved.
package thinls

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"github.com/imgbase/imgbase/internal/command"
)

// Usage is one thin volume's line of thin_ls.
type Usage struct {
	// Dev is the thin device id, lvm2's thin_id.
	Dev       int64
	Mapped    uint64
	Exclusive uint64
	Shared    uint64
}

// Fields are the columns asked of thin_ls, in Parse's order.
const Fields = "DEV,MAPPED_BYTES,EXCLUSIVE_BYTES,SHARED_BYTES"

// ErrNotInstalled means thin_ls is missing on this host.
var ErrNotInstalled = errors.New("thin_ls is not installed (install thin-provisioning-tools)")

// Parse reads `thin_ls --no-headers -o Fields`. A header line, printed by
// versions that ignore --no-headers, is skipped.
func Parse(out []byte) ([]Usage, error) {
	var us []Usage
	sc := bufio.NewScanner(bytes.NewReader(out))
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || n == 1 && f[0] == "DEV" {
			continue
		}
		if len(f) != 4 {
			return nil, fmt.Errorf("cannot read thin_ls line %d %q: want 4 columns (%s)", n, sc.Text(), Fields)
		}
		var u Usage
		dev, err := strconv.ParseUint(f[0], 10, 24)
		if err != nil {
			return nil, fmt.Errorf("cannot read thin_ls line %d: DEV %q: %w", n, f[0], err)
		}
		u.Dev = int64(dev)
		for i, dst := range []*uint64{&u.Mapped, &u.Exclusive, &u.Shared} {
			if *dst, err = strconv.ParseUint(f[i+1], 10, 64); err != nil {
				return nil, fmt.Errorf("cannot read thin_ls line %d: %s %q: %w", n, strings.Split(Fields, ",")[i+1], f[i+1], err)
			}
		}
		// Every mapped block is either the volume's alone or shared.
		if u.Exclusive > u.Mapped || u.Shared > u.Mapped || u.Exclusive+u.Shared != u.Mapped {
			return nil, fmt.Errorf("cannot read thin_ls line %d %q: exclusive and shared bytes do not add up to mapped", n, sc.Text())
		}
		us = append(us, u)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cannot read thin_ls output: %w", err)
	}
	return us, nil
}

// DMName is the device-mapper name of vg/lv plus suffix: lvm2 doubles
// every '-' in either name so that the one between them is unambiguous.
func DMName(vg, lv, suffix string) string {
	esc := func(s string) string { return strings.ReplaceAll(s, "-", "--") }
	return esc(vg) + "-" + esc(lv) + suffix
}

// Read runs thin_ls on a metadata snapshot of the active thin pool vg/pool:
// three processes (reserve, thin_ls, release). The reserve and release
// messages are read-only Cmds: together they leave the pool as they found
// it, and a dry run must show the real figures.
func Read(ctx context.Context, run command.Runner, vg, pool string) (us []Usage, err error) {
	tpool := DMName(vg, pool, "-tpool")
	if _, err := run.Run(ctx, command.Read("dmsetup", "message", tpool, "0", "reserve_metadata_snap")); err != nil {
		return nil, fmt.Errorf("cannot take a metadata snapshot of pool %s/%s (if an earlier run was killed, 'dmsetup message %s 0 release_metadata_snap' drops its snapshot): %w", vg, pool, tpool, err)
	}
	defer func() {
		// Released even when ctx is cancelled: a snapshot left behind
		// blocks the next one and pins old metadata blocks.
		_, rerr := run.Run(context.WithoutCancel(ctx), command.Read("dmsetup", "message", tpool, "0", "release_metadata_snap"))
		if rerr != nil && err == nil {
			us, err = nil, fmt.Errorf("cannot release the metadata snapshot of pool %s/%s: %w", vg, pool, rerr)
		}
	}()
	out, err := run.Run(ctx, command.Read("thin_ls", "--metadata-snap", "--no-headers", "-o", Fields, "/dev/mapper/"+DMName(vg, pool, "_tmeta")))
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return nil, ErrNotInstalled
		}
		return nil, fmt.Errorf("cannot list the thin volumes of pool %s/%s: %w", vg, pool, err)
	}
	return Parse(out)
}
