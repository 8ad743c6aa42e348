// Package volume manages the volumes every layer shares: directories such
// as /var/log or /home kept on their own thin LV, so that what is written
// there survives booting another layer or installing a new base.
//
// Vocabulary: a volume is a thin LV in the managed volume group's pool,
// tagged imgbased:volume, named after the directory it is mounted on
// (LVName: /var/log → var_log, as oVirt Node names them). It holds an ext4
// filesystem (XFS when the root is XFS) mounted with discard, and every
// layer's /etc/fstab has its line, so every layer mounts it.
//
// Lifecycle: Create moves a directory's contents onto a new volume (copy,
// verify, then mount over the directory and add the fstab line to every
// layer); the old contents stay on the root, hidden under the mount, until
// the admin frees them. Remove does the reverse: it copies the volume's
// contents back into the running root, takes the line out of every fstab
// and removes the LV. A refusal (*ErrRefused) runs nothing; any other
// failure undoes what the verb had done, in reverse order.
package volume

import (
	"context"
	"fmt"
	"os"
	"sort"

	"github.com/moby/sys/mountinfo"

	"github.com/imgbase/imgbase/internal/command"
	"github.com/imgbase/imgbase/internal/layout"
	"github.com/imgbase/imgbase/internal/lvm"
	"github.com/imgbase/imgbase/internal/system"
)

// ErrRefused is a request the manager will not carry out; nothing ran.
type ErrRefused struct{ Reason string }

func (e *ErrRefused) Error() string { return e.Reason }

func refuse(format string, args ...any) error {
	return &ErrRefused{Reason: fmt.Sprintf(format, args...)}
}

// Manager creates, removes and lists volumes on one host.
type Manager struct {
	system.System
}

// Volume is one volume as List reports it.
type Volume struct {
	Path string `json:"path"`
	LV   string `json:"lv"`
	Dev  string `json:"device"`
	// Size is the LV's virtual size; PoolUsed the thin-pool data it holds.
	Size     uint64 `json:"size"`
	PoolUsed uint64 `json:"pool_used"`
	Mounted  bool   `json:"mounted"`
	// MountPoint is where it is mounted; it differs from Path only when
	// an admin mounted it elsewhere.
	MountPoint string `json:"mount_point,omitempty"`
	// FSSize and FSUsed are the mounted filesystem's own figures.
	FSSize uint64 `json:"fs_size,omitempty"`
	FSUsed uint64 `json:"fs_used,omitempty"`
}

// volumeLV returns the volume LV called name, or nil.
func volumeLV(t *layout.Tree, name string) *lvm.LV {
	for _, lv := range t.Volumes {
		if lv.Name == name {
			return lv
		}
	}
	return nil
}

// List reports every volume, sorted by path, with one lvs call.
func (m *Manager) List(ctx context.Context) ([]Volume, error) {
	t, err := m.Managed(ctx)
	if err != nil {
		return nil, err
	}
	mounts, err := m.Mounts()
	if err != nil {
		return nil, err
	}
	out := make([]Volume, 0, len(t.Volumes))
	for _, lv := range t.Volumes {
		v := Volume{Path: PathOf(lv.Name), LV: lv.Name, Dev: "/dev/" + t.VG + "/" + lv.Name, Size: lv.Size, PoolUsed: lv.DataUsed()}
		if mp := mountPointOf(mounts, lv, v.Path); mp != "" {
			v.Mounted, v.MountPoint = true, mp
			if u, err := m.FSUsage(m.Path(mp)); err == nil {
				v.FSSize, v.FSUsed = u.Size, u.Used
			}
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// mountPointOf returns where lv's filesystem is mounted, preferring want,
// or "" when it is not mounted (or the LV is inactive).
func mountPointOf(mounts []*mountinfo.Info, lv *lvm.LV, want string) string {
	if !lv.Active() || lv.Major < 0 {
		return ""
	}
	found := ""
	for _, mi := range mounts {
		if mi.Major == lv.Major && mi.Minor == lv.Minor {
			if mi.Mountpoint == want {
				return want
			}
			if found == "" {
				found = mi.Mountpoint
			}
		}
	}
	return found
}

// mountAt returns the mount whose mount point is path (the last, which
// is the visible one), or nil.
func mountAt(mounts []*mountinfo.Info, path string) *mountinfo.Info {
	var found *mountinfo.Info
	for _, mi := range mounts {
		if mi.Mountpoint == path {
			found = mi
		}
	}
	return found
}

// mountsBelow lists the mount points strictly below path.
func mountsBelow(mounts []*mountinfo.Info, path string) []string {
	var out []string
	for _, mi := range mounts {
		if under(mi.Mountpoint, path) {
			out = append(out, mi.Mountpoint)
		}
	}
	return out
}

// fsType is the filesystem new volumes get.
func (m *Manager) fsType() string {
	if m.RootFSType != nil && m.RootFSType() == "xfs" {
		return "xfs"
	}
	return "ext4"
}

// reloadSystemd tells systemd the fstab changed, so that its mount units
// match; hosts without systemd have nothing to tell.
func (m *Manager) reloadSystemd(ctx context.Context) {
	if _, err := os.Stat(m.Path("run/systemd/system")); err != nil {
		return
	}
	if _, err := m.Run.Run(ctx, command.Change("systemctl", "daemon-reload")); err != nil {
		m.Log.Warn("cannot reload systemd after changing /etc/fstab; run 'systemctl daemon-reload'", "err", err)
	}
}
