// Package system is the machine imgbase works on, as every verb reaches
// it: commands through a Runner (a dry one prints what would change
// instead of changing it), files under a root directory ("/" on a host, a
// temporary tree in tests), and the device number of the running root,
// which tells the running layer from the others.
package system

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/imgbase/imgbase/internal/atomicfile"
	"github.com/imgbase/imgbase/internal/command"
	"github.com/imgbase/imgbase/internal/filesystem"
	"github.com/imgbase/imgbase/internal/image/preflight"
	"github.com/imgbase/imgbase/internal/layout"
	"github.com/imgbase/imgbase/internal/lvm"
)

// System is shared by the verbs' packages (host, volume), which embed it.
type System struct {
	Run command.Runner
	Log *slog.Logger
	// Out receives what a dry run would write to files.
	Out io.Writer
	// Root is the running system's root directory ("/" except in tests).
	Root string
	// MountDir is where LVs are mounted while imgbase works on them.
	MountDir string
	// RootDevice returns the kernel device number of the running /.
	RootDevice func() (major, minor int, err error)
	// RootFSType returns the filesystem type of the running / (for what
	// cannot be probed: an LV a dry run does not create, a new volume).
	RootFSType func() string
	// Usage reports the filesystem holding a path; nil uses statfs(2).
	Usage func(path string) (Usage, error)
	// ReadHeader returns the first bytes of a device, for reading its
	// superblock; nil reads the device under Root.
	ReadHeader func(dev string) ([]byte, error)
	// DirectMount mounts imgbase's working mounts with mount(2) rather
	// than mount(8) (filesystem.Tools.WorkMount); never in a dry run.
	DirectMount bool
}

// Usage is the space of one filesystem, in bytes.
type Usage struct {
	Size, Used, Free uint64
}

// FSUsage reports the space of the filesystem holding p.
func (s *System) FSUsage(p string) (Usage, error) {
	if s.Usage != nil {
		return s.Usage(p)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		return Usage{}, fmt.Errorf("cannot read the free space of %s: %w", p, err)
	}
	bs := uint64(st.Bsize)
	return Usage{Size: st.Blocks * bs, Used: (st.Blocks - st.Bfree) * bs, Free: st.Bavail * bs}, nil
}

func (s *System) LVM() lvm.Client { return lvm.Client{Run: s.Run} }
func (s *System) FS() filesystem.Tools {
	read := s.ReadHeader
	if read == nil {
		read = func(dev string) ([]byte, error) { return filesystem.ReadHeader(s.Path(dev)) }
	}
	return filesystem.Tools{Run: s.Run, ReadHeader: read, Direct: s.DirectMount && !s.Dry(), Log: s.Log}
}
func (s *System) Dry() bool                   { return command.IsDry(s.Run) }
func (s *System) Path(p string) string        { return filepath.Join(s.Root, p) }
func (s *System) MountPoint(lv string) string { return filepath.Join(s.MountDir, lv) }

// Layout reads the whole layout with one lvs call.
func (s *System) Layout(ctx context.Context) (*layout.Tree, error) {
	lvs, err := s.LVM().Report(ctx)
	if err != nil {
		return nil, err
	}
	return layout.Build(lvs)
}

// Initialized reads the layout and fails with layout.ErrNotInitialized
// when imgbase does not manage this host yet.
func (s *System) Initialized(ctx context.Context) (*layout.Tree, error) {
	t, err := s.Layout(ctx)
	if err != nil {
		return nil, err
	}
	if !t.Initialized() {
		return nil, layout.ErrNotInitialized
	}
	return t, nil
}

// Managed is Initialized, and fails too when the thin pool is unknown:
// what the verbs that create LVs need.
func (s *System) Managed(ctx context.Context) (*layout.Tree, error) {
	t, err := s.Initialized(ctx)
	if err != nil {
		return nil, err
	}
	if t.Pool == nil {
		return nil, fmt.Errorf("cannot find the thin pool of %s: tag it with 'lvchange --addtag %s %s/POOL'", t.VG, lvm.TagPool, t.VG)
	}
	return t, nil
}

// DefaultChunk is assumed when lvs does not report a pool's chunk size.
const DefaultChunk = 64 << 10

// Pool describes t's thin pool for pre-flight checks. Grow counts the
// volume group's free space when lvm.conf has dmeventd extend thin pools
// (thin_pool_autoextend_threshold): that room is the pool's too.
func (s *System) Pool(t *layout.Tree) preflight.Pool {
	chunk := int64(t.Pool.ChunkSize)
	if chunk <= 0 {
		chunk = DefaultChunk
	}
	p := preflight.Pool{
		Name: t.Pool.FullName(), Size: int64(t.Pool.Size), MetadataSize: int64(t.Pool.MetadataSize),
		DataPercent: t.Pool.DataPercent, MetadataPercent: t.Pool.MetaPercent, Chunk: chunk,
	}
	if lvm.ReadAutoextend(s.Root).Enabled() {
		p.Grow = int64(t.Pool.VGFree)
	}
	return p
}

// Creating is Managed for the verbs that create thin LVs: it refuses too
// when the pool's metadata is nearly full (removing LVs stays possible).
func (s *System) Creating(ctx context.Context) (*layout.Tree, error) {
	t, err := s.Managed(ctx)
	if err != nil {
		return nil, err
	}
	if err := preflight.CheckMetadata(s.Pool(t)); err != nil {
		return nil, fmt.Errorf("cannot create anything in the thin pool: %w", err)
	}
	return t, nil
}

// CurrentLayer returns the running layer in t, or nil when / is no layer
// (or its device cannot be told).
func (s *System) CurrentLayer(t *layout.Tree) *layout.Layer {
	if s.RootDevice == nil {
		return nil
	}
	major, minor, err := s.RootDevice()
	if err != nil {
		s.Log.Debug("cannot tell the root device", "err", err)
		return nil
	}
	return t.Current(major, minor)
}

// RootUUID returns the filesystem UUID of the running /, read from its
// device's superblock; "" when it cannot be told. Every layer gets its own
// UUID, so it tells a layer from the one it was snapshotted from.
func (s *System) RootUUID() string {
	if s.RootDevice == nil {
		return ""
	}
	major, minor, err := s.RootDevice()
	if err != nil {
		return ""
	}
	sb, ok := s.FS().Probe(fmt.Sprintf("/dev/block/%d:%d", major, minor))
	if !ok {
		return ""
	}
	return sb.UUID
}

// WriteFile writes a file atomically, or says what it would write (and,
// when what is given, why) in a dry run.
func (s *System) WriteFile(path string, data []byte, perm os.FileMode, what string) error {
	if s.Dry() {
		if what != "" {
			fmt.Fprintf(s.Out, "# write %s: %s\n", path, what)
		} else {
			fmt.Fprintf(s.Out, "# write %s\n", path)
		}
		return nil
	}
	return atomicfile.Write(path, data, perm)
}

// Mkdir makes a directory (and its parents) to mount on; a dry run makes
// none.
func (s *System) Mkdir(path string) error {
	if s.Dry() {
		return nil
	}
	if err := os.MkdirAll(path, 0o700); err != nil {
		return fmt.Errorf("cannot create %s: %w", path, err)
	}
	return nil
}

// Mounts reads the mount table of the root's /proc.
func (s *System) Mounts() ([]*mountinfo.Info, error) {
	f, err := os.Open(s.Path("proc/self/mountinfo"))
	if err != nil {
		return nil, fmt.Errorf("cannot read the mount table: %w", err)
	}
	defer f.Close()
	infos, err := mountinfo.GetMountsFromReader(f, nil)
	if err != nil {
		return nil, fmt.Errorf("cannot read the mount table: %w", err)
	}
	return infos, nil
}

// MountedAt reports whether something is mounted on dir.
func (s *System) MountedAt(dir string) bool {
	infos, err := s.Mounts()
	if err != nil {
		return false
	}
	for _, m := range infos {
		if m.Mountpoint == dir {
			return true
		}
	}
	return false
}

// MountOf returns the mount point of the filesystem holding dir (a path as
// the running system sees it): the longest mount point that is dir or one
// of its parents.
func (s *System) MountOf(dir string) (string, error) {
	infos, err := s.Mounts()
	if err != nil {
		return "", err
	}
	dir = filepath.Clean("/" + dir)
	best := ""
	for _, m := range infos {
		mp := m.Mountpoint
		if (mp == "/" || dir == mp || strings.HasPrefix(dir, mp+"/")) && len(mp) > len(best) {
			best = mp
		}
	}
	return best, nil
}
