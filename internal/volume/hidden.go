package volume

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/imgbase/imgbase/internal/command"
)

// FreeResult says what FreeHidden deleted.
type FreeResult struct {
	Path string `json:"path"`
	// Below is the mount point of the filesystem that held the hidden
	// directory ("/" for the layer itself).
	Below string `json:"below"`
	// Freed is the space the deleted files took, in bytes.
	Freed uint64 `json:"freed"`
}

// FreeHidden deletes what the mounted volume for path hides: the
// directory's contents from before Create, still on the filesystem below
// (the running layer, or a parent volume). Only the running layer's
// hidden copy is reached; other layers keep theirs. It is refused unless
// the volume is mounted on path, so that what is deleted is what nobody
// can see. The filesystem below is bind-mounted (without its submounts)
// under MountDir to reach the directory.
func (m *Manager) FreeHidden(ctx context.Context, path string) (*FreeResult, error) {
	_, lv, err := m.existing(ctx, path, "free what the volume for %s hides")
	if err != nil {
		return nil, err
	}
	mounts, err := m.Mounts()
	if err != nil {
		return nil, err
	}
	if mountPointOf(mounts, lv, path) != path {
		return nil, refuse("cannot free what the volume for %s hides: it is not mounted there, so the directory is what the system uses; mount it first ('mount %s')", path, path)
	}
	below := mountHolding(mounts, filepath.Dir(path))
	if below == nil {
		return nil, fmt.Errorf("cannot find the filesystem that holds %s in the mount table", filepath.Dir(path))
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(path, below.Mountpoint), "/")
	bind := filepath.Join(m.MountDir, lv.Name+".below")
	if err := m.Mkdir(bind); err != nil {
		return nil, err
	}
	if _, err := m.Run.Run(ctx, command.Change("mount", "--bind", m.Path(below.Mountpoint), bind)); err != nil {
		return nil, fmt.Errorf("cannot reach the filesystem below %s: %w", path, err)
	}
	res := &FreeResult{Path: path, Below: below.Mountpoint}
	err = m.deleteHidden(ctx, filepath.Join(bind, rel), res)
	if uerr := m.FS().Unmount(context.WithoutCancel(ctx), bind); uerr != nil && err == nil {
		err = uerr
	}
	if err != nil {
		return nil, err
	}
	m.removeDir(bind)
	return res, nil
}

func (m *Manager) deleteHidden(ctx context.Context, dir string, res *FreeResult) error {
	if !m.Dry() {
		// The mount point itself stays: it is where the volume is mounted.
		seen := map[uint64]bool{}
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			var st unix.Stat_t
			if p != dir && unix.Lstat(p, &st) == nil && !seen[st.Ino] {
				seen[st.Ino] = true
				res.Freed += uint64(st.Blocks) * 512
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("cannot measure the hidden directory: %w", err)
		}
	}
	if _, err := m.Run.Run(ctx, command.Change("find", dir, "-xdev", "-mindepth", "1", "-delete")); err != nil {
		return fmt.Errorf("cannot delete the hidden contents: %w", err)
	}
	return nil
}

// mountHolding returns the visible mount that holds dir: the last mount
// whose mount point is dir or one of its parents, longest first.
func mountHolding(mounts []*mountinfo.Info, dir string) *mountinfo.Info {
	var best *mountinfo.Info
	for _, mi := range mounts {
		if mi.Mountpoint != dir && !under(dir, mi.Mountpoint) && mi.Mountpoint != "/" {
			continue
		}
		if best == nil || len(mi.Mountpoint) >= len(best.Mountpoint) {
			best = mi
		}
	}
	return best
}

func (m *Manager) removeDir(p string) {
	if !m.Dry() {
		_ = unix.Rmdir(p)
	}
}
