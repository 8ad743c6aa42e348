package filesystem

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Superblock is what imgbase needs of a filesystem's own header, read
// directly instead of through blkid (a process of its own, ~0.2 s in a
// slow guest) for the filesystems it prepares layers of.
type Superblock struct {
	Type string // "ext2", "ext3", "ext4" or "xfs"
	UUID string
	// Clean is set for an ext filesystem that was cleanly unmounted (or
	// never mounted): valid, no error recorded, no journal to replay.
	// XFS keeps that state in its log, not its superblock: never set.
	Clean bool
	// MetadataCsum and CsumSeed are ext's metadata_csum and
	// metadata_csum_seed. With the first and without the second a new
	// UUID rewrites every metadata block; with both it is one write.
	MetadataCsum, CsumSeed bool
}

// HeaderSize is how much of a device ParseSuperblock needs: the ext
// superblock ends at 2048, XFS's starts at 0.
const HeaderSize = 4096

// Offsets and flags from the on-disk formats (ext4:
// Documentation/filesystems/ext4/super.rst; XFS: xfs_format.h).
const (
	extSB           = 1024
	extMagicAt      = extSB + 0x38
	extStateAt      = extSB + 0x3A
	extCompatAt     = extSB + 0x5C
	extIncompatAt   = extSB + 0x60
	extROCompatAt   = extSB + 0x64
	extUUIDAt       = extSB + 0x68
	extFlagsAt      = extSB + 0x160
	extMagic        = 0xEF53
	extValidFS      = 0x1
	extErrorFS      = 0x2
	extOrphanFS     = 0x4
	extHasJournal   = 0x4 // compat
	extRecover      = 0x4 // incompat: the journal needs replaying
	extJournalDev   = 0x8 // incompat: an external journal, not a filesystem
	extCsumSeed     = 0x2000
	extMetadataCsum = 0x400 // ro_compat
	extTestFS       = 0x4   // s_flags: blkid calls it ext4dev
	// The features ext2 and ext3 know; any other makes it ext4, as blkid
	// decides.
	ext2Incompat  = 0x2 | 0x10
	ext3Incompat  = 0x2 | 0x4 | 0x10
	ext23ROCompat = 0x1 | 0x2 | 0x4

	xfsUUIDAt = 32
)

// ParseSuperblock recognises ext2/3/4 and XFS from a device's first
// HeaderSize bytes; ok is false for anything else (the caller asks blkid).
func ParseSuperblock(h []byte) (sb Superblock, ok bool) {
	le := binary.LittleEndian
	switch {
	case len(h) >= xfsUUIDAt+16 && string(h[:4]) == "XFSB":
		return Superblock{Type: "xfs", UUID: formatUUID(h[xfsUUIDAt : xfsUUIDAt+16])}, true
	case len(h) >= extFlagsAt+4 && le.Uint16(h[extMagicAt:]) == extMagic:
		compat, incompat, ro := le.Uint32(h[extCompatAt:]), le.Uint32(h[extIncompatAt:]), le.Uint32(h[extROCompatAt:])
		if incompat&extJournalDev != 0 || le.Uint32(h[extFlagsAt:])&extTestFS != 0 {
			return Superblock{}, false
		}
		sb.Type = "ext4"
		switch {
		case compat&extHasJournal == 0 && incompat&^ext2Incompat == 0 && ro&^ext23ROCompat == 0:
			sb.Type = "ext2"
		case compat&extHasJournal != 0 && incompat&^ext3Incompat == 0 && ro&^ext23ROCompat == 0:
			sb.Type = "ext3"
		}
		sb.UUID = formatUUID(h[extUUIDAt : extUUIDAt+16])
		state := le.Uint16(h[extStateAt:])
		sb.Clean = state&extValidFS != 0 && state&(extErrorFS|extOrphanFS) == 0 && incompat&extRecover == 0
		sb.MetadataCsum = ro&extMetadataCsum != 0
		sb.CsumSeed = incompat&extCsumSeed != 0
		return sb, true
	}
	return Superblock{}, false
}

func formatUUID(b []byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// ReadHeader returns the first HeaderSize bytes of the device (or file)
// at path.
func ReadHeader(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := make([]byte, HeaderSize)
	n, err := io.ReadFull(f, h)
	if err != nil && err != io.ErrUnexpectedEOF {
		return nil, err
	}
	return h[:n], nil
}

// Mounted reads the superblock of the filesystem holding dir, found by
// its device number through sysfs (the kernel's own name for the block
// device); ok is false when any step fails or the filesystem is not one
// ParseSuperblock knows, for the caller to ask findmnt.
func Mounted(dir string) (Superblock, bool) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return Superblock{}, false
	}
	uevent, err := os.ReadFile(fmt.Sprintf("/sys/dev/block/%d:%d/uevent", unix.Major(st.Dev), unix.Minor(st.Dev)))
	if err != nil {
		return Superblock{}, false
	}
	for _, line := range strings.Split(string(uevent), "\n") {
		if name, ok := strings.CutPrefix(line, "DEVNAME="); ok {
			h, err := ReadHeader("/dev/" + name)
			if err != nil {
				return Superblock{}, false
			}
			return ParseSuperblock(h)
		}
	}
	return Superblock{}, false
}
