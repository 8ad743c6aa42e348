package volume

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/imgbase/imgbase/internal/layout"
	"github.com/imgbase/imgbase/internal/lvm"
	"github.com/imgbase/imgbase/internal/undo"
)

// RemoveResult says what Remove did.
type RemoveResult struct {
	Path string `json:"path"`
	LV   string `json:"lv"`
	// Old is where the directory that had been hidden under the volume
	// (its contents from before the volume was made) was moved; it is
	// kept for the admin to delete.
	Old string `json:"old"`
}

// Remove moves a volume's contents back into the running root and removes
// the volume: unmount it (refused while it is in use), copy its contents
// into a new directory beside path and verify the copy, take its line out
// of every layer's fstab, swap the copy in for the old directory (kept as
// <path>.imgbase-old), then remove the LV. Only the running layer gets
// the contents back; other layers see their own old directory again.
func (m *Manager) Remove(ctx context.Context, path string) (*RemoveResult, error) {
	t, lv, err := m.existing(ctx, path, "remove the volume for %s")
	if err != nil {
		return nil, err
	}
	for _, v := range t.Volumes {
		if p := PathOf(v.Name); under(p, path) {
			return nil, refuse("cannot remove the volume for %s: volume %s lies below it; remove %s first", path, p, p)
		}
	}
	mounts, err := m.Mounts()
	if err != nil {
		return nil, err
	}
	if below := mountsBelow(mounts, path); len(below) > 0 {
		return nil, refuse("cannot remove the volume for %s: %s is mounted below it; unmount it first", path, strings.Join(below, ", "))
	}
	mp := mountPointOf(mounts, lv, path)
	if mp != "" && mp != path {
		return nil, refuse("cannot remove the volume for %s: it is mounted on %s; unmount it first", path, mp)
	}
	if at := mountAt(mounts, path); at != nil && mp != path {
		return nil, refuse("cannot remove the volume for %s: %s from %s is mounted there; unmount it first", path, at.FSType, at.Source)
	}
	if err := m.checkDir(path); err != nil {
		return nil, err
	}
	parent, base := filepath.Dir(path), filepath.Base(path)
	newDir := filepath.Join(parent, "."+base+".imgbase-new")
	oldDir := path + ".imgbase-old"
	for _, p := range []string{newDir, oldDir} {
		if _, err := os.Lstat(m.Path(p)); err == nil {
			return nil, refuse("cannot remove the volume for %s: %s is in the way; move or delete it first", path, p)
		}
	}
	used := lv.DataUsed()
	if mp == path {
		u, err := m.FSUsage(m.Path(path))
		if err != nil {
			return nil, err
		}
		used = u.Used
	}
	room, err := m.FSUsage(m.Path(parent))
	if err != nil {
		return nil, err
	}
	if used > room.Free {
		return nil, refuse("cannot remove the volume for %s: its %d bytes do not fit in the %d bytes free on the filesystem of %s; free %d bytes there first",
			path, used, room.Free, parent, used-room.Free)
	}

	e := Entry{VG: t.VG, LV: lv.Name, Path: path}
	m.Log.Info("removing volume", "path", path, "lv", lv.Name)
	u := &undo.Stack{Log: m.Log}
	if err := m.remove(ctx, u, t, e, lv.Active(), mp == path, newDir, oldDir); err != nil {
		return nil, u.Rollback(ctx, err)
	}
	// The contents are safe in the root now: a failing lvremove leaves an
	// unused LV, not a broken host, so it is reported and not undone.
	if err := m.LVM().Remove(ctx, t.VG, lv.Name); err != nil {
		return nil, fmt.Errorf("the contents of %s are back on the root and no fstab mounts the volume, but %w; remove it by hand with 'lvremove %s/%s'", path, err, t.VG, lv.Name)
	}
	m.reloadSystemd(ctx)
	return &RemoveResult{Path: path, LV: lv.Name, Old: oldDir}, nil
}

func (m *Manager) remove(ctx context.Context, u *undo.Stack, t *layout.Tree, e Entry, active, mounted bool, newDir, oldDir string) error {
	src := m.Path(e.Path)
	if mounted {
		if err := m.FS().Unmount(ctx, src); err != nil {
			return fmt.Errorf("%w; it is in use: see 'fuser -vm %s', stop what uses it and retry", err, e.Path)
		}
		u.Push("unmount "+e.Path, func(ctx context.Context) error { return m.FS().Mount(ctx, e.Dev(), src, "", "discard") })
	}
	if !active {
		if err := m.LVM().Activate(ctx, t.VG, e.LV); err != nil {
			return err
		}
		u.Push("activate "+e.LV, func(ctx context.Context) error { return m.LVM().Deactivate(ctx, t.VG, e.LV) })
	}
	dst := m.Path(newDir)
	if err := m.Mkdir(dst); err != nil {
		return err
	}
	u.Push("create "+newDir, func(context.Context) error { return m.removeAll(dst) })
	err := m.withMounted(ctx, e.Dev(), filepath.Join(m.MountDir, e.LV), "", func() error {
		_, err := m.copyTree(ctx, filepath.Join(m.MountDir, e.LV), dst, time.Time{})
		return err
	})
	if err != nil {
		return err
	}
	if !m.Dry() {
		// The volume's own lost+found does not belong in the root; a
		// non-empty one stays (os.Remove refuses it).
		os.Remove(filepath.Join(dst, "lost+found"))
	}
	if err := m.editFstabs(ctx, u, t, func(b []byte) []byte { return RemoveFromFstab(b, e) }, "remove the line of "+e.Dev()); err != nil {
		return err
	}
	if err := m.rename(src, m.Path(oldDir)); err != nil {
		return err
	}
	u.Push("move "+e.Path+" aside", func(context.Context) error { return m.rename(m.Path(oldDir), src) })
	if err := m.rename(dst, src); err != nil {
		return err
	}
	u.Push("move the copy to "+e.Path, func(context.Context) error { return m.rename(src, dst) })
	return nil
}

func (m *Manager) rename(from, to string) error {
	if m.Dry() {
		fmt.Fprintf(m.Out, "# rename %s %s\n", from, to)
		return nil
	}
	if err := os.Rename(from, to); err != nil {
		return fmt.Errorf("cannot rename %s: %w", from, err)
	}
	return nil
}

// removeAll deletes a directory only the manager made (an unfinished copy).
func (m *Manager) removeAll(p string) error {
	if m.Dry() {
		return nil
	}
	return os.RemoveAll(p)
}

// existing reads the layout and finds the volume for path, refusing with
// "cannot <what>" when there is none.
func (m *Manager) existing(ctx context.Context, path, what string) (*layout.Tree, *lvm.LV, error) {
	name, err := LVName(path)
	if err != nil {
		return nil, nil, err
	}
	t, err := m.Managed(ctx)
	if err != nil {
		return nil, nil, err
	}
	lv := volumeLV(t, name)
	if lv == nil {
		return nil, nil, refuse("cannot "+what+": there is none (no LV %s/%s tagged imgbased:volume); see 'imgbase volume --list'", path, t.VG, name)
	}
	return t, lv, nil
}
