package volume

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/imgbase/imgbase/internal/layout"
	"github.com/imgbase/imgbase/internal/undo"
)

// editFstabs applies edit to the fstab of every layer: the running one's
// is Root/etc/fstab, every other layer is mounted (activated first when
// it is not active) under MountDir while its fstab is edited. Each edit
// pushes an undo step that writes the old content back. what describes the
// edit for a dry run.
func (m *Manager) editFstabs(ctx context.Context, u *undo.Stack, t *layout.Tree, edit func([]byte) []byte, what string) error {
	cur := m.CurrentLayer(t)
	for _, l := range t.Layers() {
		if cur != nil && l.Name() == cur.Name() {
			continue
		}
		if err := m.editLayerFstab(ctx, u, t, l, edit, what); err != nil {
			return err
		}
	}
	return m.editFile(u, m.Path("etc/fstab"), edit, what)
}

// editFile edits one fstab in place and pushes its restore onto u.
func (m *Manager) editFile(u *undo.Stack, p string, edit func([]byte) []byte, what string) error {
	old, perm, err := readFstab(p)
	if err != nil {
		return err
	}
	if m.Dry() {
		return m.WriteFile(p, nil, perm, what)
	}
	if err := m.WriteFile(p, edit(old), perm, what); err != nil {
		return err
	}
	u.Push("edit "+p, func(context.Context) error { return m.WriteFile(p, old, perm, "restore") })
	return nil
}

func readFstab(p string) ([]byte, os.FileMode, error) {
	data, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return nil, 0o644, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("cannot read %s: %w", p, err)
	}
	perm := os.FileMode(0o644)
	if st, err := os.Stat(p); err == nil {
		perm = st.Mode().Perm()
	}
	return data, perm, nil
}

// editLayerFstab edits the fstab of a layer that is not running.
func (m *Manager) editLayerFstab(ctx context.Context, u *undo.Stack, t *layout.Tree, l *layout.Layer, edit func([]byte) []byte, what string) error {
	dev := "/dev/" + t.VG + "/" + l.Name()
	if !l.LV.Active() {
		if err := m.LVM().Activate(ctx, t.VG, l.Name()); err != nil {
			return err
		}
		defer m.deactivate(ctx, t.VG, l.Name())
	}
	// A dry run cannot probe a layer it did not really activate: mount
	// then guesses the type.
	fstype := ""
	if !m.Dry() || l.LV.Active() {
		var err error
		if fstype, err = m.FS().Type(ctx, dev); err != nil {
			return err
		}
		if fstype == "" {
			m.Log.Warn("the layer holds no filesystem; its fstab is left alone", "layer", l.Name())
			return nil
		}
	}
	mnt := filepath.Join(m.MountDir, l.Name())
	var old []byte
	var perm os.FileMode
	err := m.withMounted(ctx, dev, mnt, fstype, func() error {
		p := filepath.Join(mnt, "etc/fstab")
		var err error
		if old, perm, err = readFstab(p); err != nil {
			return err
		}
		if m.Dry() {
			return m.WriteFile(p, nil, perm, what)
		}
		return m.WriteFile(p, edit(old), perm, what)
	})
	if err != nil || m.Dry() {
		return err
	}
	u.Push("edit the fstab of "+l.Name(), func(ctx context.Context) error {
		if !l.LV.Active() {
			if err := m.LVM().Activate(ctx, t.VG, l.Name()); err != nil {
				return err
			}
			defer m.deactivate(ctx, t.VG, l.Name())
		}
		return m.withMounted(ctx, dev, mnt, fstype, func() error {
			return m.WriteFile(filepath.Join(mnt, "etc/fstab"), old, perm, "restore")
		})
	})
	return nil
}

func (m *Manager) deactivate(ctx context.Context, vg, name string) {
	if err := m.LVM().Deactivate(ctx, vg, name); err != nil {
		m.Log.Warn("cannot deactivate the layer again", "layer", name, "err", err)
	}
}

// withMounted mounts dev on mnt (made if missing) for the time fn runs.
func (m *Manager) withMounted(ctx context.Context, dev, mnt, fstype string, fn func() error) error {
	if err := m.Mkdir(mnt); err != nil {
		return err
	}
	if err := m.FS().Mount(ctx, dev, mnt, fstype); err != nil {
		return err
	}
	err := fn()
	uerr := m.FS().Unmount(context.WithoutCancel(ctx), mnt)
	if uerr == nil && !m.Dry() {
		os.Remove(mnt)
	}
	if err == nil {
		err = uerr
	}
	return err
}
