// Package image opens the file a new base is installed from and says what
// it holds.
//
// Two kinds of file are accepted: a raw filesystem image (ext4 or XFS, the
// bytes that go onto the base LV as they are) and the oVirt Node "liveimg",
// a squashfs whose LiveOS/rootfs.img is such a raw image. Open reads the
// superblock to learn the filesystem and its size, so that a caller can
// refuse an image larger than its LV or a file cut short before writing
// anything; for a liveimg it mounts the squashfs read-only through the
// caller's Mounter and hands out the inner rootfs.img. An Image must be
// closed, which unmounts what Open mounted.
//
// Verify the file (package verify) before Open: opening a liveimg has the
// kernel parse its squashfs, which should only ever see trusted bytes.
package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/imgbase/imgbase/internal/command"
)

// Format is how the filesystem is packaged in the file.
type Format string

const (
	// Raw is a filesystem image written to the LV byte for byte.
	Raw Format = "raw"
	// LiveImg is an oVirt Node squashfs holding LiveOS/rootfs.img.
	LiveImg Format = "liveimg"
)

// FSType is a filesystem recognised by its superblock.
type FSType string

const (
	// Ext4 also covers ext2 and ext3, which share the superblock and
	// which the ext4 driver mounts.
	Ext4     FSType = "ext4"
	XFS      FSType = "xfs"
	Squashfs FSType = "squashfs"
)

// RootfsPath is where a liveimg keeps its filesystem image.
const RootfsPath = "LiveOS/rootfs.img"

var (
	// ErrUnknownFormat: the file is neither ext4, XFS nor a liveimg.
	ErrUnknownFormat = errors.New("unknown image format")
	// ErrTruncated: the file is shorter than the filesystem it holds.
	ErrTruncated = errors.New("image is truncated")
	// ErrCorrupt: a superblock with impossible values, or a filesystem
	// check that found errors.
	ErrCorrupt = errors.New("image is corrupt")
	// ErrNoNVR: the image carries no build metadata naming it.
	ErrNoNVR = errors.New("image has no build NVR")
)

// Env is how Open reaches the system: Run for debugfs, e2fsck and
// xfs_repair, Mount for the squashfs of a liveimg and for reading an XFS
// image's metadata. Log may be nil.
type Env struct {
	Run   command.Runner
	Mount Mounter
	Log   *slog.Logger
}

// Image is an opened image file.
type Image struct {
	// Path is the file that was opened.
	Path   string
	Format Format
	// FSType is the filesystem that goes onto the LV (never Squashfs).
	FSType FSType
	// Size is the filesystem's size in bytes from its superblock: the
	// number of bytes to write and the least LV size that can hold it.
	Size int64

	env    Env
	outer  *os.File // the file at Path
	fs     *os.File // the raw filesystem: outer, or rootfs.img inside the mount
	fsPath string   // a path naming fs, for tools that take a file name
	mount  string   // where a liveimg's squashfs is mounted, "" if not
}

// ReaderAt returns the raw filesystem's bytes, Size of them.
func (im *Image) ReaderAt() io.ReaderAt { return im.fs }

// FSPath names the raw filesystem as a file (the image itself, or the
// rootfs.img inside the mounted liveimg) for tools that want a path. It is
// valid until Close.
func (im *Image) FSPath() string { return im.fsPath }

// Open detects the format of the file at path and opens the filesystem in
// it. Errors wrap ErrUnknownFormat, ErrTruncated or ErrCorrupt when the file
// is not something a base can be made from.
func Open(ctx context.Context, path string, env Env) (_ *Image, err error) {
	if env.Log == nil {
		env.Log = slog.New(slog.DiscardHandler)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open image: %w", err)
	}
	im := &Image{Path: path, env: env, outer: f, fs: f, fsPath: path}
	defer func() {
		if err != nil {
			im.Close()
		}
	}()
	sb, fileSize, err := probe(f)
	if err != nil {
		return nil, fmt.Errorf("cannot open image %s: %w", path, err)
	}
	switch sb.fs {
	case Ext4, XFS:
		im.Format, im.FSType, im.Size = Raw, sb.fs, sb.size
		if fileSize < sb.size {
			return nil, truncated(path, fileSize, sb)
		}
	case Squashfs:
		if fileSize < sb.size {
			return nil, truncated(path, fileSize, sb)
		}
		im.Format = LiveImg
		if err := im.openLiveImg(ctx); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("cannot open image %s: %w: expected a raw ext4 or XFS filesystem image, or an oVirt Node liveimg squashfs holding %s", path, ErrUnknownFormat, RootfsPath)
	}
	env.Log.Debug("image opened", "path", path, "format", im.Format, "fs", im.FSType, "size", im.Size)
	return im, nil
}

// Detect reads the format of the file at path from its first bytes, and
// opens nothing inside it (a liveimg is not mounted): "" when unknown.
func Detect(path string) (Format, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cannot open image: %w", err)
	}
	defer f.Close()
	sb, _, err := probe(f)
	if err != nil {
		return "", fmt.Errorf("cannot open image %s: %w", path, err)
	}
	switch sb.fs {
	case Ext4, XFS:
		return Raw, nil
	case Squashfs:
		return LiveImg, nil
	}
	return "", nil
}

func truncated(path string, have int64, sb superblock) error {
	return fmt.Errorf("cannot open image %s: %w: the %s filesystem spans %d bytes but the file has %d; download it again", path, ErrTruncated, sb.fs, sb.size, have)
}

// probe reads f's superblock and its length. The length comes from
// seeking, which also works for a block device where Stat says 0.
func probe(f *os.File) (superblock, int64, error) {
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return superblock{}, 0, err
	}
	h := make([]byte, min(size, headerSize))
	if _, err := f.ReadAt(h, 0); err != nil && !errors.Is(err, io.EOF) {
		return superblock{}, 0, err
	}
	sb, err := parseSuperblock(h)
	return sb, size, err
}

// openLiveImg mounts the squashfs and opens the raw image inside it.
func (im *Image) openLiveImg(ctx context.Context) error {
	if im.env.Mount == nil {
		return fmt.Errorf("cannot open liveimg %s: no way to mount squashfs was given", im.Path)
	}
	dir, err := im.env.Mount.Mount(ctx, im.Path, string(Squashfs))
	if err != nil {
		return fmt.Errorf("cannot open liveimg %s: %w", im.Path, err)
	}
	im.mount = dir
	// The squashfs is read-only, so checking that the path holds no
	// symlink once is enough to keep tools handed fsPath inside it.
	inner := filepath.Join(dir, RootfsPath)
	for _, p := range []string{filepath.Dir(inner), inner} {
		fi, err := os.Lstat(p)
		if err != nil {
			return fmt.Errorf("cannot open liveimg %s: %w: it holds no %s (%w)", im.Path, ErrUnknownFormat, RootfsPath, err)
		}
		if want := p == inner; fi.Mode().IsRegular() != want || (!want && !fi.IsDir()) {
			return fmt.Errorf("cannot open liveimg %s: %w: %s is a %s", im.Path, ErrUnknownFormat, RootfsPath, fi.Mode().Type())
		}
	}
	f, err := os.Open(inner)
	if err != nil {
		return fmt.Errorf("cannot open liveimg %s: %w", im.Path, err)
	}
	im.fs, im.fsPath = f, inner
	sb, size, err := probe(f)
	if err != nil {
		return fmt.Errorf("cannot open %s in liveimg %s: %w", RootfsPath, im.Path, err)
	}
	if sb.fs != Ext4 && sb.fs != XFS {
		return fmt.Errorf("cannot open liveimg %s: %w: its %s is neither ext4 nor XFS", im.Path, ErrUnknownFormat, RootfsPath)
	}
	if size < sb.size {
		return truncated(im.Path+":"+RootfsPath, size, sb)
	}
	im.FSType, im.Size = sb.fs, sb.size
	return nil
}

// Close closes the files and unmounts what Open mounted.
func (im *Image) Close() error {
	var errs []error
	if im.fs != nil && im.fs != im.outer {
		errs = append(errs, im.fs.Close())
	}
	im.fs = nil
	if im.outer != nil {
		errs = append(errs, im.outer.Close())
		im.outer = nil
	}
	if im.mount != "" {
		// The unmount must happen even when the caller's context is done.
		if err := im.env.Mount.Unmount(context.Background(), im.mount); err != nil {
			errs = append(errs, fmt.Errorf("cannot unmount %s: %w", im.mount, err))
		}
		im.mount = ""
	}
	return errors.Join(errs...)
}
