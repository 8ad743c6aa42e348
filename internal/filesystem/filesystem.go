// Package filesystem prepares the filesystem inside a new layer: its type,
// a fresh UUID (a thin snapshot starts with its origin's), mounting, and the
// layer's /etc/fstab.
package filesystem

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/imgbase/imgbase/internal/command"
)

// Tools runs the filesystem tools through a command.Runner.
type Tools struct {
	Run command.Runner
	// ReadHeader returns a device's first HeaderSize bytes; nil leaves
	// every probe to blkid.
	ReadHeader func(dev string) ([]byte, error)
	// Direct makes WorkMount and WorkUnmount call mount(2) and umount(2)
	// instead of starting mount(8) and umount(8); Log then records them
	// as Run would.
	Direct bool
	Log    *slog.Logger
}

// Probe reads the superblock of dev itself; ok is false when it cannot
// (no reader, unreadable, not ext or XFS).
func (t Tools) Probe(dev string) (Superblock, bool) {
	if t.ReadHeader == nil {
		return Superblock{}, false
	}
	h, err := t.ReadHeader(dev)
	if err != nil {
		return Superblock{}, false
	}
	return ParseSuperblock(h)
}

// Type returns the filesystem type on dev ("ext4", "xfs" …), or "" when dev
// holds no filesystem.
func (t Tools) Type(ctx context.Context, dev string) (string, error) {
	if sb, ok := t.Probe(dev); ok {
		return sb.Type, nil
	}
	out, err := t.Run.Run(ctx, command.Read("blkid", "-p", "-o", "value", "-s", "TYPE", dev))
	if err != nil {
		// blkid exits 2 when it finds nothing to report.
		if command.ExitCode(err) == 2 {
			return "", nil
		}
		return "", fmt.Errorf("cannot probe the filesystem on %s: %w", dev, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// UUID returns the filesystem UUID on dev.
func (t Tools) UUID(ctx context.Context, dev string) (string, error) {
	if sb, ok := t.Probe(dev); ok {
		return sb.UUID, nil
	}
	out, err := t.Run.Run(ctx, command.Read("blkid", "-p", "-o", "value", "-s", "UUID", dev))
	if err != nil {
		return "", fmt.Errorf("cannot read the filesystem UUID of %s: %w", dev, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// IsExt reports whether fstype is one e2fsprogs handles.
func IsExt(fstype string) bool {
	return fstype == "ext4" || fstype == "ext3" || fstype == "ext2"
}

// NewUUID gives the filesystem on dev a new random UUID. dev must not be
// mounted; scratch is an empty directory used to replay an XFS log.
//
// clean says dev is a block-for-block copy of a filesystem that passed a
// full check (Check) and has not been mounted since, as a layer of a base
// just written from a checked image is. Its check (ext) or log replay
// (XFS) would find nothing to do, so it is skipped; when the tool refuses
// all the same, the full way is taken.
func (t Tools) NewUUID(ctx context.Context, dev, fstype, scratch string, clean bool) error {
	switch {
	case IsExt(fstype):
		if clean {
			// tune2fs wants a "freshly checked" filesystem before it
			// rewrites metadata checksums; -T records the check that was
			// made of the image.
			if _, err := t.Run.Run(ctx, command.Change("tune2fs", "-T", "now", "-U", "random", dev)); err == nil {
				return nil
			}
		}
		// A snapshot of a mounted filesystem carries an unreplayed journal:
		// tune2fs refuses to touch it until e2fsck has run.
		if err := t.Repair(ctx, dev); err != nil {
			return err
		}
		if _, err := t.Run.Run(ctx, command.Change("tune2fs", "-U", "random", dev)); err != nil {
			return fmt.Errorf("cannot give %s a new filesystem UUID: %w", dev, err)
		}
	case fstype == "xfs":
		if clean {
			if _, err := t.Run.Run(ctx, command.Change("xfs_admin", "-U", "generate", dev)); err == nil {
				return nil
			}
		}
		// xfs_admin refuses a dirty log; mounting (nouuid: the origin with the
		// same UUID may be mounted) replays it.
		if err := t.Mount(ctx, dev, scratch, "xfs", "nouuid"); err != nil {
			return err
		}
		if err := t.Unmount(ctx, scratch); err != nil {
			return err
		}
		if _, err := t.Run.Run(ctx, command.Change("xfs_admin", "-U", "generate", dev)); err != nil {
			return fmt.Errorf("cannot give %s a new filesystem UUID: %w", dev, err)
		}
	default:
		return fmt.Errorf("cannot give %s a new filesystem UUID: %q is not supported (use ext4 or xfs)", dev, fstype)
	}
	return nil
}

// Repair checks the ext filesystem on dev and fixes what it finds, as a
// snapshot of a mounted filesystem needs: its journal replayed, its
// orphans released. Exit 1 means "errors corrected", which is expected.
func (t Tools) Repair(ctx context.Context, dev string) error {
	fsck := command.Change("e2fsck", "-fy", dev)
	fsck.OKCodes = []int{1}
	if _, err := t.Run.Run(ctx, fsck); err != nil {
		return fmt.Errorf("cannot check the filesystem on %s: %w", dev, err)
	}
	return nil
}

// SeedChecksums gives an ext filesystem with metadata_csum the
// metadata_csum_seed feature, so that the new UUID of each later
// snapshot is one superblock write instead of a rewrite of every
// metadata block (seconds on a large filesystem). Setting it rewrites
// nothing but the superblock: the seed is the checksum of the current
// UUID, which every checksum already uses. dev must not be mounted;
// other filesystems are left alone.
func (t Tools) SeedChecksums(ctx context.Context, dev string) error {
	sb, ok := t.Probe(dev)
	if !ok || !IsExt(sb.Type) || !sb.MetadataCsum || sb.CsumSeed {
		return nil
	}
	if _, err := t.Run.Run(ctx, command.Change("tune2fs", "-O", "metadata_csum_seed", dev)); err != nil {
		return fmt.Errorf("cannot give %s the metadata_csum_seed feature: %w", dev, err)
	}
	return nil
}

// Check verifies the filesystem on dev without changing it.
func (t Tools) Check(ctx context.Context, dev, fstype string) error {
	var c command.Cmd
	switch {
	case IsExt(fstype):
		c = command.Read("e2fsck", "-fn", dev)
	case fstype == "xfs":
		c = command.Read("xfs_repair", "-n", dev)
	default:
		return fmt.Errorf("cannot check %s: filesystem %q is not supported (use ext4 or xfs)", dev, fstype)
	}
	if _, err := t.Run.Run(ctx, c); err != nil {
		return fmt.Errorf("the filesystem on %s is damaged: %w", dev, err)
	}
	return nil
}

// Mount mounts dev on dir.
func (t Tools) Mount(ctx context.Context, dev, dir, fstype string, opts ...string) error {
	argv := []string{"mount"}
	if fstype != "" {
		argv = append(argv, "-t", fstype)
	}
	if len(opts) > 0 {
		argv = append(argv, "-o", strings.Join(opts, ","))
	}
	argv = append(argv, dev, dir)
	if _, err := t.Run.Run(ctx, command.Change(argv...)); err != nil {
		return fmt.Errorf("cannot mount %s: %w", dev, err)
	}
	return nil
}

// WorkMount mounts dev, an LV, on dir for imgbase's own work under /run (a
// layer being prepared, a base read for its kernel or its tree), where
// nothing of mount(8)'s bookkeeping is needed:
// with Direct it is one mount(2), not a process (0.2-0.5 s in a slow
// guest). opts are "ro" or filesystem options.
func (t Tools) WorkMount(ctx context.Context, dev, dir, fstype string, opts ...string) error {
	if !t.Direct || fstype == "" {
		return t.Mount(ctx, dev, dir, fstype, opts...)
	}
	flags, data := mountFlags(opts)
	start := time.Now()
	err := unix.Mount(dev, dir, fstype, flags, data)
	t.logged("mount(2) "+dev+" "+dir+" "+fstype+" "+data, err, start)
	if err != nil {
		return fmt.Errorf("cannot mount %s: %w", dev, err)
	}
	return nil
}

// WorkUnmount unmounts what WorkMount (or Mount) mounted on dir; a loop
// device mount(8) set up is released by the kernel with the mount.
func (t Tools) WorkUnmount(ctx context.Context, dir string) error {
	if !t.Direct {
		return t.Unmount(ctx, dir)
	}
	start := time.Now()
	err := unix.Unmount(dir, 0)
	t.logged("umount(2) "+dir, err, start)
	if err != nil {
		return fmt.Errorf("cannot unmount %s: %w", dir, err)
	}
	return nil
}

// mountFlags splits mount(8)-style options into mount(2)'s flags and
// the filesystem's own options.
func mountFlags(opts []string) (uintptr, string) {
	var flags uintptr
	var data []string
	for _, o := range opts {
		switch o {
		case "ro":
			flags |= unix.MS_RDONLY
		case "rw", "defaults":
		default:
			data = append(data, o)
		}
	}
	return flags, strings.Join(data, ",")
}

func (t Tools) logged(call string, err error, start time.Time) {
	if t.Log != nil {
		t.Log.Debug("called", "call", call, "err", err, "duration", time.Since(start).Round(time.Millisecond))
	}
}

// Unmount unmounts dir.
func (t Tools) Unmount(ctx context.Context, dir string) error {
	if _, err := t.Run.Run(ctx, command.Change("umount", dir)); err != nil {
		return fmt.Errorf("cannot unmount %s: %w", dir, err)
	}
	return nil
}
