package filesystem

import (
	"context"
	"encoding/binary"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/imgbase/imgbase/internal/command/commandtest"
)

// extHeader is a device's first 4 KiB holding an ext superblock with the
// given feature words and state.
func extHeader(compat, incompat, ro uint32, state uint16) []byte {
	h := make([]byte, HeaderSize)
	le := binary.LittleEndian
	le.PutUint16(h[extMagicAt:], extMagic)
	le.PutUint16(h[extStateAt:], state)
	le.PutUint32(h[extCompatAt:], compat)
	le.PutUint32(h[extIncompatAt:], incompat)
	le.PutUint32(h[extROCompatAt:], ro)
	copy(h[extUUIDAt:], []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0, 1, 2, 3, 4, 5, 6, 7})
	return h
}

func TestParseSuperblock(t *testing.T) {
	const (
		journal  = extHasJournal
		filetype = 0x2
		extents  = 0x40
		csum     = extMetadataCsum
	)
	xfs := make([]byte, HeaderSize)
	copy(xfs, "XFSB")
	copy(xfs[xfsUUIDAt:], []byte{0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	for _, tc := range []struct {
		name string
		h    []byte
		ok   bool
		want Superblock
	}{
		{"ext4 clean with seed", extHeader(journal, filetype|extents|extCsumSeed, csum, extValidFS), true,
			Superblock{Type: "ext4", UUID: "01234567-89ab-cdef-0001-020304050607", Clean: true, MetadataCsum: true, CsumSeed: true}},
		{"ext4 mounted: journal to replay", extHeader(journal, filetype|extents|extRecover, csum, extValidFS), true,
			Superblock{Type: "ext4", UUID: "01234567-89ab-cdef-0001-020304050607", MetadataCsum: true}},
		{"ext4 with an error recorded", extHeader(journal, filetype|extents, 0, extValidFS|extErrorFS), true,
			Superblock{Type: "ext4", UUID: "01234567-89ab-cdef-0001-020304050607"}},
		{"ext4 not valid", extHeader(journal, filetype|extents, 0, 0), true,
			Superblock{Type: "ext4", UUID: "01234567-89ab-cdef-0001-020304050607"}},
		{"ext3", extHeader(journal, filetype, 0x1|0x2, extValidFS), true,
			Superblock{Type: "ext3", UUID: "01234567-89ab-cdef-0001-020304050607", Clean: true}},
		{"ext2", extHeader(0, filetype, 0x1, extValidFS), true,
			Superblock{Type: "ext2", UUID: "01234567-89ab-cdef-0001-020304050607", Clean: true}},
		{"external journal", extHeader(0, extJournalDev, 0, extValidFS), false, Superblock{}},
		{"xfs", xfs, true, Superblock{Type: "xfs", UUID: "deadbeef-0000-0000-0000-000000000001"}},
		{"zeroes", make([]byte, HeaderSize), false, Superblock{}},
		{"short", []byte("XFS"), false, Superblock{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ParseSuperblock(tc.h)
			if ok != tc.ok || got != tc.want {
				t.Errorf("got %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestTypeReadsTheSuperblockElseAsksBlkid(t *testing.T) {
	headers := map[string][]byte{"/dev/vg/ext": extHeader(extHasJournal, 0x2|0x40, 0, extValidFS)}
	rec := (&commandtest.Recorder{}).On("blkid", "vfat\n", nil)
	tools := Tools{Run: rec, ReadHeader: func(dev string) ([]byte, error) {
		if h, ok := headers[dev]; ok {
			return h, nil
		}
		return make([]byte, HeaderSize), nil
	}}
	if got, err := tools.Type(context.Background(), "/dev/vg/ext"); err != nil || got != "ext4" {
		t.Errorf("ext: %q, %v", got, err)
	}
	if n := len(rec.Lines()); n != 0 {
		t.Errorf("an ext superblock still ran %v", rec.Lines())
	}
	if got, err := tools.Type(context.Background(), "/dev/vg/other"); err != nil || got != "vfat" {
		t.Errorf("other: %q, %v", got, err)
	}
	if lines := rec.Lines(); len(lines) != 1 || !strings.HasPrefix(lines[0], "blkid ") {
		t.Errorf("an unknown superblock ran %v, want blkid", lines)
	}
}

func TestSeedChecksumsOnlyWhereItHelps(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    []byte
		want string
	}{
		{"metadata_csum without seed", extHeader(extHasJournal, 0x2|0x40, extMetadataCsum, extValidFS), "tune2fs -O metadata_csum_seed /dev/vg/lv"},
		{"seed already", extHeader(extHasJournal, 0x2|0x40|extCsumSeed, extMetadataCsum, extValidFS), ""},
		{"no metadata_csum", extHeader(extHasJournal, 0x2|0x40, 0, extValidFS), ""},
		{"not ext", make([]byte, HeaderSize), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &commandtest.Recorder{}
			tools := Tools{Run: rec, ReadHeader: func(string) ([]byte, error) { return tc.h, nil }}
			if err := tools.SeedChecksums(context.Background(), "/dev/vg/lv"); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(rec.Lines(), "\n"); got != tc.want {
				t.Errorf("ran %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMountFlags(t *testing.T) {
	for _, tc := range []struct {
		opts  []string
		flags uintptr
		data  string
	}{
		{[]string{"discard"}, 0, "discard"},
		{[]string{"discard", "nouuid"}, 0, "discard,nouuid"},
		{[]string{"ro", "noload"}, unix.MS_RDONLY, "noload"},
		{nil, 0, ""},
	} {
		flags, data := mountFlags(tc.opts)
		if flags != tc.flags || data != tc.data {
			t.Errorf("%v: %#x %q, want %#x %q", tc.opts, flags, data, tc.flags, tc.data)
		}
	}
}
