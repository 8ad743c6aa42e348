// Package preflight decides, before anything is created, whether a new
// base and its first layer fit: pool data, pool metadata and /boot, each
// counted at worst case. It is arithmetic only; the caller reads the
// figures (lvs, statfs, file sizes) and passes them in.
package preflight

import (
	"errors"
	"fmt"
	"strings"

	"github.com/imgbase/imgbase/internal/image/progress"
)

// Estimates of thin-pool metadata use. A mapped chunk costs about 64 bytes
// of metadata (lvmthin(7) sizes metadata as pool size / chunk size × 64);
// each new thin device adds its own btree roots and nodes, for which a
// generous 1 MiB is counted.
const (
	MetadataPerChunk  = 64
	MetadataPerDevice = 1 << 20
)

var (
	// ErrNoSpace: some resource is too small; the error is a *ShortageError.
	ErrNoSpace = errors.New("not enough space")
	// ErrImageTooLarge: the filesystem does not fit the LV size asked for.
	ErrImageTooLarge = errors.New("image is larger than the logical volume")
)

// Pool is the thin pool's state, as lvs reports it.
type Pool struct {
	// Name is the pool as lvextend takes it ("HostVG/pool00").
	Name string
	// Size and MetadataSize are lv_size and lv_metadata_size in bytes.
	Size, MetadataSize int64
	// DataPercent and MetadataPercent are data_percent and
	// metadata_percent (0–100).
	DataPercent, MetadataPercent float64
	// Chunk is chunk_size in bytes.
	Chunk int64
	// MaxPercent is the use, in percent, the pool may reach after the
	// install (e.g. below the autoextend threshold, or the point where a
	// full pool would stall every layer); 0 means 100.
	MaxPercent float64
	// Grow is what the pool's data and metadata together can still grow
	// by themselves: the volume group's free bytes when lvm.conf's
	// thin_pool_autoextend_threshold has dmeventd extend the pool, else 0.
	Grow int64
}

// MetadataFullPercent is the pool metadata use from which commands that
// create thin LVs refuse: a pool whose metadata runs out fails every
// write of every layer, and repairing it needs the pool offline.
const MetadataFullPercent = 90

// ErrMetadataFull: the pool's metadata is MetadataFullPercent full.
var ErrMetadataFull = errors.New("its metadata is nearly full")

// CheckMetadata refuses to create anything in a pool whose metadata is
// MetadataFullPercent full or more, saying how to grow it.
func CheckMetadata(pool Pool) error {
	if pool.MetadataPercent < MetadataFullPercent {
		return nil
	}
	// Double it, at least 64 MiB: lvm2 caps the metadata at 16 GiB itself.
	grow := max(pool.MetadataSize, 64<<20)
	return fmt.Errorf("%w (%.1f%% used of %s); grow it first: lvextend --poolmetadatasize +%dM %s",
		ErrMetadataFull, pool.MetadataPercent, progress.Bytes(pool.MetadataSize), mib(grow), pool.Name)
}

// Boot is the /boot filesystem and what one layer's boot files take.
type Boot struct {
	Free int64
	// Needed is the kernel, initramfs and anything else copied to
	// /boot/<layer>/ for the new layer.
	Needed int64
}

// Plan is what the install will create.
type Plan struct {
	// FSSize is the image's filesystem size and LVSize the new base LV's
	// size; FSSize must not exceed LVSize.
	FSSize, LVSize int64
	// ImageData is the pool space the image takes once written:
	// sparse.Stats.DataBytes from a scan, or FSSize when not scanned
	// (the worst case).
	ImageData int64
	// LayerData is what the first layer writes beyond its base: the
	// carried configuration and the filesystem metadata rewritten by a
	// new UUID. It is the caller's estimate.
	LayerData int64
	// NewLVs is the number of thin LVs created: 2, the base and its layer.
	NewLVs int
}

// Removable is something garbage collection could remove to make room:
// an old base with its layers, or an old layer's boot files.
type Removable struct {
	Name string
	// PoolBytes and BootBytes are what removing it frees (estimates for
	// the pool: thin LVs share chunks).
	PoolBytes, BootBytes int64
}

// Shortage is one resource that does not have room.
type Shortage struct {
	What       string // "pool data", "pool metadata", "/boot"
	Need, Free int64
	// Remove names the removables that would free enough, oldest first
	// as given; Enough is false when removing all of them would not.
	Remove []string
	Enough bool
	// Hint says how to grow the resource instead.
	Hint string
}

// ShortageError lists every resource that is short; it matches ErrNoSpace.
type ShortageError struct {
	Shortages []Shortage
}

func (e *ShortageError) Is(target error) bool { return target == ErrNoSpace }

func (e *ShortageError) Error() string {
	var b strings.Builder
	b.WriteString("not enough space for the new base")
	for _, s := range e.Shortages {
		fmt.Fprintf(&b, "; %s: need %s, free %s", s.What, progress.Bytes(s.Need), progress.Bytes(s.Free))
		switch {
		case len(s.Remove) > 0 && s.Enough:
			fmt.Fprintf(&b, ", remove %s", strings.Join(s.Remove, ", "))
			if s.Hint != "" {
				fmt.Fprintf(&b, " or %s", s.Hint)
			}
		case len(s.Remove) > 0:
			fmt.Fprintf(&b, ", removing %s is not enough", strings.Join(s.Remove, ", "))
			if s.Hint != "" {
				fmt.Fprintf(&b, "; %s", s.Hint)
			}
		case s.Hint != "":
			fmt.Fprintf(&b, ", %s", s.Hint)
		}
	}
	return b.String()
}

// Need is the worst-case use of each resource by a plan.
type Need struct {
	Data, Metadata, Boot int64
}

// Needs computes what plan takes from pool and boot at worst case: every
// byte of data a whole chunk, each layer's first write to a chunk a new
// mapping.
func Needs(pool Pool, boot Boot, plan Plan) Need {
	chunks := roundUp(plan.ImageData, pool.Chunk) + roundUp(plan.LayerData, pool.Chunk)
	return Need{
		Data:     chunks * pool.Chunk,
		Metadata: chunks*MetadataPerChunk + int64(plan.NewLVs)*MetadataPerDevice,
		Boot:     boot.Needed,
	}
}

// Check returns nil when plan fits, an error wrapping ErrImageTooLarge
// when the image does not fit its LV, or a *ShortageError naming for each
// short resource what is needed, what is free, and what to remove.
// removable is in the order garbage collection would remove things.
func Check(pool Pool, boot Boot, plan Plan, removable []Removable) error {
	if pool.Chunk <= 0 {
		return fmt.Errorf("cannot check space: pool chunk size %d", pool.Chunk)
	}
	if plan.LVSize > 0 && plan.FSSize > plan.LVSize {
		return fmt.Errorf("cannot add base: %w: the filesystem needs %s (%d bytes) but the LV is %s; give a --size of at least %s",
			ErrImageTooLarge, progress.Bytes(plan.FSSize), plan.FSSize, progress.Bytes(plan.LVSize), progress.Bytes(plan.FSSize))
	}
	need := Needs(pool, boot, plan)
	var short []Shortage
	dataFree, metaFree := pool.free()
	// Autoextend grows data and metadata from the same free extents:
	// count them once, for data first.
	toData := min(max(need.Data-dataFree, 0), pool.Grow)
	dataFree += toData
	metaFree += pool.Grow - toData
	if free := dataFree; need.Data > free {
		short = append(short, shortage("pool data", need.Data, free, removable, func(r Removable) int64 { return r.PoolBytes },
			fmt.Sprintf("grow the pool: lvextend -L +%dM %s", mib(need.Data-free), pool.Name)))
	}
	if free := metaFree; need.Metadata > free {
		short = append(short, shortage("pool metadata", need.Metadata, free, removable, func(r Removable) int64 { return r.PoolBytes / pool.Chunk * MetadataPerChunk },
			fmt.Sprintf("grow the metadata: lvextend --poolmetadatasize +%dM %s", mib(need.Metadata-free), pool.Name)))
	}
	if need.Boot > boot.Free {
		short = append(short, shortage("/boot", need.Boot, boot.Free, removable, func(r Removable) int64 { return r.BootBytes },
			"free space on /boot (a layer removed with 'imgbase layer --remove' takes its kernel files along)"))
	}
	if short != nil {
		return &ShortageError{Shortages: short}
	}
	return nil
}

// Growth is what the pool's data and metadata must grow by before plan is
// carried out, when it fits only by counting Pool.Grow: imgbase extends
// the pool itself then, instead of trusting dmeventd to keep pace with a
// fast write. Both are 0 when the pool fits as it is.
func Growth(pool Pool, boot Boot, plan Plan) (data, metadata int64) {
	need := Needs(pool, boot, plan)
	dataFree, metaFree := pool.free()
	return max(need.Data-dataFree, 0), max(need.Metadata-metaFree, 0)
}

// free is what the pool's data and metadata have free up to MaxPercent.
func (p Pool) free() (data, metadata int64) {
	limit := p.MaxPercent
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	return freeBytes(p.Size, p.DataPercent, limit), freeBytes(p.MetadataSize, p.MetadataPercent, limit)
}

// shortage picks the fewest removables, in the order given, that free
// enough; if all of them do not, it lists all that free anything.
func shortage(what string, need, free int64, removable []Removable, frees func(Removable) int64, hint string) Shortage {
	s := Shortage{What: what, Need: need, Free: free, Hint: hint}
	got := free
	for _, r := range removable {
		if frees(r) <= 0 {
			continue
		}
		s.Remove = append(s.Remove, r.Name)
		got += frees(r)
		if got >= need {
			s.Enough = true
			break
		}
	}
	return s
}

func freeBytes(size int64, usedPercent, limit float64) int64 {
	free := float64(size) * (limit - usedPercent) / 100
	if free < 0 {
		return 0
	}
	return int64(free)
}

func roundUp(n, chunk int64) int64 {
	if n <= 0 {
		return 0
	}
	return (n + chunk - 1) / chunk
}

func mib(n int64) int64 { return (n + 1<<20 - 1) >> 20 }
