package host

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbase/imgbase/internal/command"
	"github.com/imgbase/imgbase/internal/journal"
)

// failAt fails the k-th mutating command (counting from 0) it sees.
type failAt struct {
	next command.Runner
	k, n int
}

func (f *failAt) Run(ctx context.Context, c command.Cmd) ([]byte, error) {
	if c.Mutating {
		f.n++
		if f.n-1 == f.k {
			// Record it too, so that the test sees what was attempted.
			f.next.Run(ctx, c)
			return nil, &command.Error{Argv: c.Argv, ExitCode: 5, Stderr: "injected failure"}
		}
	}
	return f.next.Run(ctx, c)
}

// updateFixture is a host running Base-1-0+1 whose fake devices and
// mounts are plain files and directories under its root.
func updateFixture(t *testing.T) (*fixture, *fakeBoot, UpdateRequest) {
	t.Helper()
	img := makeExt4(t, 16)
	f := newFixture(t, "running", 254, 5)
	f.h.Run = passReads{f.rec}
	fb := &fakeBoot{def: "Base-1-0+1"}
	f.h.Boot = fb
	for _, d := range []string{"dev/HostVG", "etc", "run/imgbase/mnt/Base-1-0/etc", "run/imgbase/mnt/Base-3-0+1/etc"} {
		os.MkdirAll(filepath.Join(f.h.Root, d), 0o755)
	}
	os.WriteFile(filepath.Join(f.h.Root, "dev/HostVG/Base-3-0"), nil, 0o644)
	os.WriteFile(filepath.Join(f.h.Root, "etc/hostname"), []byte("admin-host\n"), 0o644)
	os.WriteFile(filepath.Join(f.h.Root, "run/imgbase/mnt/Base-1-0/etc/hostname"), []byte("debian\n"), 0o644)
	os.WriteFile(filepath.Join(f.h.Root, "run/imgbase/mnt/Base-3-0+1/etc/hostname"), []byte("debian\n"), 0o644)
	req := UpdateRequest{ImageRequest: ImageRequest{Image: img, NVR: "Base-3-0", Size: 1 << 30, Full: true}, Keep: 3}
	req.Verify.KeysDir = t.TempDir()
	return f, fb, req
}

func TestUpdateCompletes(t *testing.T) {
	f, fb, req := updateFixture(t)
	res, err := f.h.Update(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Layer != "Base-3-0+1" || res.Base.Base != "Base-3-0" || res.Base.Written == 0 {
		t.Errorf("result %+v", res)
	}
	// The admin's hostname was carried into the new layer.
	if data, _ := os.ReadFile(filepath.Join(f.h.Root, "run/imgbase/mnt/Base-3-0+1/etc/hostname")); string(data) != "admin-host\n" {
		t.Errorf("hostname in the new layer: %q", data)
	}
	if _, err := os.Stat(filepath.Join(f.h.Root, "run/imgbase/mnt/Base-3-0+1", ReportDir, "migrate-report.json")); err != nil {
		t.Errorf("no migration report: %v", err)
	}
	if len(fb.added) != 1 || fb.added[0] != "Base-3-0+1" {
		t.Errorf("boot entries %v", fb.added)
	}
	if _, err := os.Stat(filepath.Join(f.h.Root, JournalFile)); !os.IsNotExist(err) {
		t.Errorf("journal left behind: %v", err)
	}
	// Keep 3 of Base-1-0, Base-2-0, Base-10-0 and the new one: the oldest
	// removable goes, and Base-1-0 is running.
	if len(res.Removed) != 1 || res.Removed[0] != "Base-2-0" {
		t.Errorf("removed %v", res.Removed)
	}
	// Each LVM process costs 0.5-3 s under TCG: lvs, lvcreate of the base
	// and of the layer, the new base sealed in one lvchange, the old base
	// activated and deactivated around the merge, and one lvremove per old
	// base (checked against the layout read at the start: no second lvs).
	if n := f.rec.Count("lvs", "lvcreate", "lvchange", "lvremove", "vgchange", "lvconvert"); n > 7 {
		t.Errorf("update ran %d LVM processes, want at most 7:\n%s", n, strings.Join(f.rec.Lines(), "\n"))
	}
}

// A failure at every mutating command before the commit leaves no LV
// created, no boot entry, and no journal.
func TestUpdateFailureAtEveryStepUndoes(t *testing.T) {
	f, _, req := updateFixture(t)
	if _, err := f.h.Update(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	total := len(f.rec.Mutations())
	for k := 0; k < total; k++ {
		f, fb, req := updateFixture(t)
		inj := &failAt{next: f.h.Run, k: k}
		f.h.Run = inj
		_, err := f.h.Update(context.Background(), req)
		muts := f.rec.Mutations()
		failed := muts[k]
		if strings.HasPrefix(failed, "tune2fs -T now") {
			// The quick UUID change has a fallback: e2fsck, then tune2fs.
			if err != nil || !strings.Contains(strings.Join(muts[k:], "\n"), "e2fsck -fy") {
				t.Errorf("k=%d (%s): %v; no fallback in:\n%s", k, failed, err, strings.Join(muts[k:], "\n"))
			}
			continue
		}
		if err == nil {
			t.Errorf("k=%d (%s): no error", k, failed)
			continue
		}
		var je *journal.Error
		if errors.As(err, &je) && je.Committed {
			// After the commit the journal stays, and recover finishes.
			if _, serr := os.Stat(filepath.Join(f.h.Root, JournalFile)); serr != nil {
				t.Errorf("k=%d (%s): committed failure without a journal: %v", k, failed, serr)
			}
			f.h.Run = inj.next
			out, rerr := f.h.Recover(context.Background())
			// A step interrupted after its work may run twice: entries are rewritten whole.
			if rerr != nil || out == nil || out.RolledBack || len(fb.added) == 0 || fb.added[len(fb.added)-1] != "Base-3-0+1" {
				t.Errorf("k=%d (%s): recover %+v %v, entries %v", k, failed, out, rerr, fb.added)
			}
			continue
		}
		created := map[string]bool{}
		for _, m := range muts {
			if strings.HasPrefix(m, "lvcreate") {
				fields := strings.Fields(m)
				for i, w := range fields {
					if w == "--name" {
						created[fields[i+1]] = true
					}
				}
			}
			if strings.HasPrefix(m, "lvremove --yes HostVG/") {
				delete(created, strings.TrimPrefix(m, "lvremove --yes HostVG/"))
			}
		}
		// The old base mounted for the merge is let go again.
		active := false
		for _, m := range muts {
			switch m {
			case "lvchange --activate y --ignoreactivationskip HostVG/Base-1-0":
				active = true
			case "lvchange --activate n HostVG/Base-1-0":
				active = false
			}
		}
		if active {
			t.Errorf("k=%d (%s): the old base was left active; ran:\n%s", k, failed, strings.Join(muts, "\n"))
		}
		if len(created) != 0 || len(fb.added) != 0 {
			t.Errorf("k=%d (%s): left %v and entries %v; ran:\n%s", k, failed, created, fb.added, strings.Join(muts, "\n"))
		}
		if _, err := os.Stat(filepath.Join(f.h.Root, JournalFile)); !os.IsNotExist(err) {
			t.Errorf("k=%d (%s): journal left behind", k, failed)
		}
	}
}

// base --remove is journaled and committed once its checks pass: the
// entries go first, and when lvremove fails (a crash, a busy LV) the
// journal stays and recover finishes the removal; no entry ever names a
// removed LV.
func TestRemoveBaseIsFinishedByRecover(t *testing.T) {
	f := newFixture(t, "running", 254, 5)
	fb := &fakeBoot{def: "Base-1-0+1"}
	f.h.Boot = fb
	inj := &failAt{next: f.rec, k: 0}
	f.h.Run = inj
	err := f.h.RemoveBase(context.Background(), "Base-2-0")
	var je *journal.Error
	if !errors.As(err, &je) || !je.Committed {
		t.Fatalf("a failed lvremove: %v, want a committed journal error", err)
	}
	if len(fb.removed) != 1 || fb.removed[0] != "Base-2-0+1" {
		t.Errorf("entries removed before the LVs: %v, want [Base-2-0+1]", fb.removed)
	}
	if _, err := os.Stat(filepath.Join(f.h.Root, JournalFile)); err != nil {
		t.Fatalf("no journal left for recover: %v", err)
	}
	f.h.Run = f.rec
	out, err := f.h.Recover(context.Background())
	if err != nil || out == nil || out.RolledBack {
		t.Fatalf("recover: %+v %v", out, err)
	}
	m := f.rec.Mutations()
	if last := m[len(m)-1]; last != "lvremove --yes HostVG/Base-2-0+1 HostVG/Base-2-0" {
		t.Errorf("recover's last change %q, want the LVs removed:\n%s", last, strings.Join(m, "\n"))
	}
	if _, err := os.Stat(filepath.Join(f.h.Root, JournalFile)); !os.IsNotExist(err) {
		t.Errorf("journal left after recover: %v", err)
	}
}

// A layer that never had an entry (its base held no filesystem) does not
// stop the removal of its base, nor of itself.
func TestRemoveLayerWithoutEntry(t *testing.T) {
	f := newFixture(t, "running", 254, 5)
	f.h.Boot = &fakeBoot{def: "Base-1-0+1", noEntry: map[string]bool{"Base-2-0+1": true, "Base-1-0+2": true}}
	if err := f.h.RemoveLayer(context.Background(), "Base-1-0+2"); err != nil {
		t.Fatal(err)
	}
	if err := f.h.RemoveBase(context.Background(), "Base-2-0"); err != nil {
		t.Fatal(err)
	}
	wantLines(t, f.rec.Mutations(), []string{
		"lvremove --yes HostVG/Base-1-0+2",
		"lvremove --yes HostVG/Base-2-0+1 HostVG/Base-2-0",
	})
}
