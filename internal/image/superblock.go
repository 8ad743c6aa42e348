package image

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// headerSize is how much of a file detection reads: the ext4 superblock
// ends at 2048, XFS and squashfs keep theirs at 0.
const headerSize = 4096

// superblock is what detection learns from the first bytes of a file.
type superblock struct {
	fs   FSType
	size int64 // bytes the filesystem spans (squashfs: bytes_used)
}

// Offsets of the fields read, from the on-disk formats
// (ext4: Documentation/filesystems/ext4/super.rst; XFS: xfs_format.h;
// squashfs: Documentation/filesystems/squashfs.rst).
const (
	ext4SBOffset       = 1024
	ext4Magic          = 0xEF53
	ext4MagicAt        = ext4SBOffset + 0x38
	ext4BlocksLoAt     = ext4SBOffset + 0x04
	ext4LogBlockSizeAt = ext4SBOffset + 0x18
	ext4IncompatAt     = ext4SBOffset + 0x60
	ext4BlocksHiAt     = ext4SBOffset + 0x150
	ext4Incompat64Bit  = 0x80

	xfsBlockSizeAt = 4
	xfsDBlocksAt   = 8

	squashBytesUsedAt = 40
)

// parseSuperblock recognises ext4, XFS and squashfs from a file's first
// headerSize bytes. An unrecognised header returns fs == "".
func parseSuperblock(h []byte) (superblock, error) {
	le, be := binary.LittleEndian, binary.BigEndian
	switch {
	case len(h) >= 4 && bytes.Equal(h[:4], []byte("XFSB")):
		if len(h) < xfsDBlocksAt+8 {
			return superblock{}, fmt.Errorf("%w: XFS superblock cut short", ErrTruncated)
		}
		bs := int64(be.Uint32(h[xfsBlockSizeAt:]))
		blocks := be.Uint64(h[xfsDBlocksAt:])
		if bs < 512 || bs > 65536 || bs&(bs-1) != 0 || blocks == 0 || blocks > 1<<50/uint64(bs) {
			return superblock{}, fmt.Errorf("%w: XFS superblock has block size %d and %d blocks", ErrCorrupt, bs, blocks)
		}
		return superblock{fs: XFS, size: int64(blocks) * bs}, nil
	case len(h) >= 4 && bytes.Equal(h[:4], []byte("hsqs")):
		if len(h) < squashBytesUsedAt+8 {
			return superblock{}, fmt.Errorf("%w: squashfs superblock cut short", ErrTruncated)
		}
		used := le.Uint64(h[squashBytesUsedAt:])
		if used == 0 || used > 1<<50 {
			return superblock{}, fmt.Errorf("%w: squashfs superblock says %d bytes used", ErrCorrupt, used)
		}
		return superblock{fs: Squashfs, size: int64(used)}, nil
	case len(h) >= ext4MagicAt+2 && le.Uint16(h[ext4MagicAt:]) == ext4Magic:
		if len(h) < ext4BlocksHiAt+4 {
			return superblock{}, fmt.Errorf("%w: ext4 superblock cut short", ErrTruncated)
		}
		logBS := le.Uint32(h[ext4LogBlockSizeAt:])
		if logBS > 6 { // 1 KiB << 6 = 64 KiB, the largest ext4 block
			return superblock{}, fmt.Errorf("%w: ext4 superblock has log block size %d", ErrCorrupt, logBS)
		}
		bs := int64(1024) << logBS
		blocks := uint64(le.Uint32(h[ext4BlocksLoAt:]))
		if le.Uint32(h[ext4IncompatAt:])&ext4Incompat64Bit != 0 {
			blocks |= uint64(le.Uint32(h[ext4BlocksHiAt:])) << 32
		}
		if blocks == 0 || blocks > 1<<50/uint64(bs) {
			return superblock{}, fmt.Errorf("%w: ext4 superblock has %d blocks", ErrCorrupt, blocks)
		}
		return superblock{fs: Ext4, size: int64(blocks) * bs}, nil
	}
	return superblock{}, nil
}
