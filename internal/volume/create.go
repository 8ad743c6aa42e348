package volume

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/imgbase/imgbase/internal/command"
	"github.com/imgbase/imgbase/internal/layout"
	"github.com/imgbase/imgbase/internal/lvm"
	"github.com/imgbase/imgbase/internal/size"
	"github.com/imgbase/imgbase/internal/undo"
)

// CreateResult says what Create made.
type CreateResult struct {
	Volume
	FSType string `json:"fs_type"`
	// Changed lists the files (relative to Path) that changed while they
	// were copied, so their copy was not verified: what was written after
	// the copy is in the hidden old directory.
	Changed []string `json:"changed_during_copy,omitempty"`
	// Hidden is the old directory on the root filesystem, now under the
	// mount: its contents still take space there until freed.
	Hidden string `json:"hidden"`
}

// Create makes a volume for the directory path of sizeArg (as lvm2 reads
// sizes: 10G, 512M) and moves the directory's contents onto it: a new thin
// LV, mkfs, a copy of the directory (cp -a: owners, modes, times, xattrs,
// ACLs, SELinux labels, hard links, symlinks; sparse files stay sparse;
// one filesystem) verified entry by entry, then the fstab line in every
// layer and the mount over path. The old contents stay on the root, hidden
// under the mount: nothing is deleted.
func (m *Manager) Create(ctx context.Context, path, sizeArg string) (*CreateResult, error) {
	name, err := LVName(path)
	if err != nil {
		return nil, err
	}
	sz, err := size.Parse(sizeArg)
	if err != nil {
		return nil, refuse("cannot create a volume for %s: %v", path, err)
	}
	if err := m.checkDir(path); err != nil {
		return nil, err
	}
	t, err := m.Creating(ctx)
	if err != nil {
		return nil, err
	}
	if err := m.checkCreate(t, path, name); err != nil {
		return nil, err
	}
	if err := m.checkSpace(t, path, sz); err != nil {
		return nil, err
	}
	fstype := m.fsType()
	e := Entry{VG: t.VG, LV: name, Path: path, FSType: fstype}
	m.Log.Info("creating volume", "path", path, "lv", name, "size", sz, "fs", fstype)
	u := &undo.Stack{Log: m.Log}
	res, err := m.create(ctx, u, t, e, sz)
	if err != nil {
		return nil, u.Rollback(ctx, err)
	}
	m.reloadSystemd(ctx)
	return res, nil
}

// checkDir refuses a path that is not a real directory of the running
// root: a symlink anywhere on the way would make the mount land elsewhere.
func (m *Manager) checkDir(path string) error {
	p := m.Root
	for _, c := range strings.Split(path[1:], "/") {
		p = filepath.Join(p, c)
		st, err := os.Lstat(p)
		if err != nil {
			return refuse("cannot create a volume for %s: %v; create the directory first", path, errors.Unwrap(err))
		}
		if st.Mode()&os.ModeSymlink != 0 {
			return refuse("cannot create a volume for %s: %s is a symlink; give the directory it points to", path, strings.TrimPrefix(p, strings.TrimSuffix(m.Root, "/")))
		}
		if !st.IsDir() {
			return refuse("cannot create a volume for %s: %s is not a directory", path, strings.TrimPrefix(p, strings.TrimSuffix(m.Root, "/")))
		}
	}
	return nil
}

// checkCreate refuses what Create cannot do safely, before anything runs.
func (m *Manager) checkCreate(t *layout.Tree, path, name string) error {
	if volumeLV(t, name) != nil {
		return refuse("cannot create a volume for %s: it exists (%s/%s); see 'imgbase volume --list'", path, t.VG, name)
	}
	if t.LV(name) != nil {
		return refuse("cannot create a volume for %s: %s/%s exists and is no volume; rename it with 'lvrename' first", path, t.VG, name)
	}
	for _, v := range t.Volumes {
		// Mounting over /var would hide a /var/log volume mounted below it.
		if p := PathOf(v.Name); under(p, path) {
			return refuse("cannot create a volume for %s: volume %s lies below it and would be hidden; remove %s first ('imgbase volume --remove %s'), then create %s before it", path, p, p, p, path)
		}
	}
	mounts, err := m.Mounts()
	if err != nil {
		return err
	}
	if mi := mountAt(mounts, path); mi != nil {
		return refuse("cannot create a volume for %s: it is already a mount point (%s from %s); unmount it and remove its /etc/fstab line first", path, mi.FSType, mi.Source)
	}
	if below := mountsBelow(mounts, path); len(below) > 0 {
		return refuse("cannot create a volume for %s: %s mounted below it would be hidden and not copied; unmount it first", path, strings.Join(below, ", "))
	}
	fstab, _, err := readFstab(m.Path("etc/fstab"))
	if err != nil {
		return err
	}
	if dev := Mounts(fstab, path); dev != "" {
		return refuse("cannot create a volume for %s: /etc/fstab already mounts %s there; remove that line first", path, dev)
	}
	return nil
}

// checkSpace refuses a directory whose contents do not fit the volume
// (with room for the filesystem's own metadata) or the pool's free data.
func (m *Manager) checkSpace(t *layout.Tree, path string, sz uint64) error {
	need, err := diskUse(m.Path(path))
	if err != nil {
		return err
	}
	if room := sz - sz/20; need > room {
		return refuse("cannot create a volume of %d bytes for %s: its contents take %d bytes and the filesystem keeps about 5%% for itself; give a size of at least %d", sz, path, need, need+need/19+1)
	}
	if free := t.Pool.DataFree(); need > free {
		return refuse("cannot create a volume for %s: its contents take %d bytes and pool %s/%s has %d bytes free; free %d bytes there first", path, need, t.VG, t.Pool.Name, free, need-free)
	}
	return nil
}

// diskUse is the space the files below dir take on dir's filesystem,
// each hard-linked file counted once.
func diskUse(dir string) (uint64, error) {
	var total uint64
	var rootDev uint64
	seen := map[uint64]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != dir {
				return nil
			}
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return nil
		}
		if p == dir {
			rootDev = st.Dev
		} else if st.Dev != rootDev {
			return fs.SkipDir
		}
		if st.Nlink > 1 && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		total += uint64(st.Blocks) * 512
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("cannot measure %s: %w", dir, err)
	}
	return total, nil
}

func (m *Manager) create(ctx context.Context, u *undo.Stack, t *layout.Tree, e Entry, sz uint64) (*CreateResult, error) {
	if err := m.LVM().CreateThin(ctx, t.VG, t.Pool.Name, e.LV, sz, []string{lvm.TagVolume}); err != nil {
		return nil, err
	}
	u.Push("create "+e.LV, func(ctx context.Context) error { return m.LVM().Remove(ctx, t.VG, e.LV) })
	if err := m.mkfs(ctx, e.Dev(), e.FSType); err != nil {
		return nil, err
	}
	src := m.Path(e.Path)
	var changed []string
	err := m.withMounted(ctx, e.Dev(), filepath.Join(m.MountDir, e.LV), e.FSType, func() error {
		var err error
		changed, err = m.copyTree(ctx, src, filepath.Join(m.MountDir, e.LV), time.Now().Add(-clockLag))
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := m.editFstabs(ctx, u, t, func(b []byte) []byte { return AddToFstab(b, e) }, "add "+e.Line()); err != nil {
		return nil, err
	}
	if err := m.FS().Mount(ctx, e.Dev(), src, e.FSType, "discard"); err != nil {
		return nil, err
	}
	u.Push("mount "+e.Path, func(ctx context.Context) error { return m.FS().Unmount(ctx, src) })
	if len(changed) > 0 {
		m.Log.Warn("files changed while they were copied; their newest content is in the hidden old directory", "path", e.Path, "count", len(changed))
	}
	return &CreateResult{
		Volume: Volume{Path: e.Path, LV: e.LV, Dev: e.Dev(), Size: sz, Mounted: !m.Dry(), MountPoint: e.Path},
		FSType: e.FSType, Changed: changed, Hidden: e.Path,
	}, nil
}

// clockLag covers the kernel's coarse clock for file times, which runs up
// to a jiffy (10 ms at HZ=100) behind: a file changed just before the copy
// started is counted as changed too.
const clockLag = 50 * time.Millisecond

// mkfs makes the volume's filesystem without discarding: a new thin LV
// holds no blocks, so there is nothing to discard and it would only cost
// time.
func (m *Manager) mkfs(ctx context.Context, dev, fstype string) error {
	var c command.Cmd
	if fstype == "xfs" {
		c = command.Change("mkfs.xfs", "-q", "-K", dev)
	} else {
		c = command.Change("mkfs."+fstype, "-q", "-E", "nodiscard", dev)
	}
	if _, err := m.Run.Run(ctx, c); err != nil {
		return fmt.Errorf("cannot make a filesystem on %s: %w", dev, err)
	}
	return nil
}

// copyTree copies the contents of directory src into the existing
// directory dst and verifies the copy (see VerifyCopy). GNU cp -a keeps
// owners, modes, times, xattrs (ACLs, SELinux labels) and hard links, and
// copies src's own mode and owner onto dst; -x stays on src's filesystem;
// --sparse=always keeps holes. coreutils is on every host, rsync is not.
func (m *Manager) copyTree(ctx context.Context, src, dst string, since time.Time) ([]string, error) {
	if _, err := m.Run.Run(ctx, command.Change("cp", "-ax", "--sparse=always", src+"/.", dst+"/")); err != nil {
		return nil, fmt.Errorf("cannot copy %s: %w", src, err)
	}
	if m.Dry() {
		return nil, nil
	}
	changed, err := VerifyCopy(src, dst, since)
	if err != nil {
		return nil, fmt.Errorf("cannot move %s: %w", src, err)
	}
	return changed, nil
}
