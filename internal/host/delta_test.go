package host

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imgbase/imgbase/internal/command"
	"github.com/imgbase/imgbase/internal/image"
	"github.com/imgbase/imgbase/internal/journal"
	"github.com/imgbase/imgbase/internal/layout"
	"github.com/imgbase/imgbase/internal/lvm"
	"github.com/imgbase/imgbase/internal/manifest"
	"github.com/imgbase/imgbase/internal/treesync"
)

func TestFullWhy(t *testing.T) {
	b := &layout.Base{LV: &lvm.LV{Name: "Base-1-0"}}
	for _, tc := range []struct {
		name   string
		full   bool
		from   *layout.Base
		fromFS string
		imFS   image.FSType
		want   string
	}{
		{"delta", false, b, "ext4", image.Ext4, ""},
		{"ext3 predecessor, ext4 image", false, b, "ext3", image.Ext4, ""},
		{"xfs both", false, b, "xfs", image.XFS, ""},
		{"--full", true, b, "ext4", image.Ext4, WhyFull},
		{"no predecessor", false, nil, "", image.Ext4, WhyNoPredecessor},
		{"xfs onto ext4", false, b, "ext4", image.XFS, WhyFSDiffers},
		{"predecessor without filesystem", false, b, "", image.Ext4, WhyFSDiffers},
	} {
		if got := fullWhy(tc.full, tc.from, tc.fromFS, tc.imFS); got != tc.want {
			t.Errorf("%s: fullWhy = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestWayString(t *testing.T) {
	w := Way{Why: WhyLarger}
	if s := w.String(); s != "full write: the delta would write more than a full copy" {
		t.Errorf("%q", s)
	}
	w = Way{Delta: true, From: "imgbase-test-1.0-1"}
	w.Sync = &treesync.Report{Unchanged: 1234, Rewritten: 12, Added: 3, Removed: 1, BytesWritten: 4404019}
	want := "delta from imgbase-test-1.0-1: 1,234 entries unchanged, 12 rewritten, 0 metadata-only, 3 added, 1 removed, 4.2 MiB written"
	if s := w.String(); s != want {
		t.Errorf("%q\nwant %q", s, want)
	}
}

// deltaWorld plays the devices and mounts of the delta path with
// directories: a device's content is a directory, a thin snapshot copies
// its origin's, mounting copies a device's content into the mount point
// and unmounting a writable mount keeps what it holds as the device's.
// The image's loop mount shows the image tree. Everything else goes to
// the fixture's runner.
type deltaWorld struct {
	t     *testing.T
	next  command.Runner // what runs (or records) the commands
	image string         // the image's tree
	mu    sync.Mutex
	dev   map[string]string // /dev/HostVG/LV → its content
	mnt   map[string]string // mount point → the device mounted read-write, "" read-only
}

func (w *deltaWorld) Run(ctx context.Context, c command.Cmd) ([]byte, error) {
	a := c.Argv
	out, err := w.next.Run(ctx, c)
	if err != nil {
		return out, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	line := strings.Join(a, " ")
	switch a[0] {
	case "lvcreate":
		name := a[slices.Index(a, "--name")+1]
		if slices.Contains(a, "--snapshot") && !strings.Contains(name, "+") {
			if src, ok := w.dev["/dev/"+a[len(a)-1]]; ok {
				w.dev["/dev/HostVG/"+name] = w.copy(src)
			}
		}
	case "mount":
		dev, dir := a[len(a)-2], a[len(a)-1]
		if strings.Contains(line, "loop,ro") {
			w.fill(w.image, dir)
			w.mnt[dir] = ""
			break
		}
		src, ok := w.dev[dev]
		ro := strings.Contains(line, " ro,") || strings.HasSuffix(line, " ro")
		// The merge's source mount (read-only, at the base's own name) is
		// the fixture's: left alone.
		if !ok || (ro && !strings.HasPrefix(filepath.Base(dir), ".ro-")) {
			break
		}
		w.fill(src, dir)
		w.mnt[dir] = ""
		if !ro {
			w.mnt[dir] = dev
		}
	case "umount":
		dir := a[len(a)-1]
		dev, ok := w.mnt[dir]
		if !ok {
			break
		}
		if dev != "" {
			w.dev[dev] = w.copy(dir)
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
		delete(w.mnt, dir)
	}
	return out, nil
}

// mountsRecorded never runs a mount for real, not even the image's
// read-only one: rec records it.
type mountsRecorded struct{ rec, other command.Runner }

func (m mountsRecorded) Run(ctx context.Context, c command.Cmd) ([]byte, error) {
	if c.Argv[0] == "mount" || c.Argv[0] == "umount" {
		return m.rec.Run(ctx, c)
	}
	return m.other.Run(ctx, c)
}

func (w *deltaWorld) fill(src, dir string) {
	if out, err := exec.Command("cp", "-a", src+"/.", dir+"/").CombinedOutput(); err != nil {
		w.t.Errorf("cp -a %s %s: %v %s", src, dir, err, out)
	}
}

func (w *deltaWorld) copy(src string) string {
	dst := w.t.TempDir()
	w.fill(src, dst)
	return dst
}

// describeTree is the manifest of the tree at root, as the delta path
// describes one.
func describeTree(t *testing.T, root string) *manifest.Manifest {
	t.Helper()
	m, err := manifest.Build(context.Background(), root, manifest.BuildOptions{Exclude: excluded})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func writeTree(t *testing.T, root string, files map[string]string, links map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for p, target := range links {
		os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755)
		if err := os.Symlink(target, filepath.Join(root, p)); err != nil {
			t.Fatal(err)
		}
	}
}

// deltaFixture is updateFixture whose Base-1-0 holds a tree and whose
// image holds another: a file unchanged, one rewritten, a directory
// removed, a file added, a symlink retargeted.
func deltaFixture(t *testing.T) (*fixture, *fakeBoot, UpdateRequest, *deltaWorld) {
	f, fb, req := updateFixture(t)
	req.Full = false
	old, img := t.TempDir(), t.TempDir()
	writeTree(t, old, map[string]string{"usr/bin/same": "same content", "usr/share/changes": "v1", "opt/gone/file": "bye", "etc/hostname": "debian\n"},
		map[string]string{"usr/lib/link": "one"})
	writeTree(t, img, map[string]string{"usr/bin/same": "same content", "usr/share/changes": "version two", "usr/share/new": "new!", "etc/hostname": "debian\n"},
		map[string]string{"usr/lib/link": "two"})
	w := &deltaWorld{t: t, next: mountsRecorded{rec: f.rec, other: f.h.Run}, image: img,
		dev: map[string]string{"/dev/HostVG/Base-1-0": old}, mnt: map[string]string{}}
	f.h.Run = w
	return f, fb, req, w
}

func TestUpdateByDelta(t *testing.T) {
	f, fb, req, w := deltaFixture(t)
	res, err := f.h.Update(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	way := res.Base.Way
	if !way.Delta || way.From != "Base-1-0" || way.Sync == nil {
		t.Fatalf("way %+v, want a delta from Base-1-0", way)
	}
	// usr/share/changes rewritten; usr/share/new added; opt, opt/gone,
	// opt/gone/file removed; the symlink rewritten; the bytes are those
	// of the two files with new content.
	s := way.Sync
	if s.Rewritten != 2 || s.Added != 1 || s.Removed != 3 || s.BytesWritten != int64(len("version two")+len("new!")) {
		t.Errorf("sync %+v", *s)
	}
	if res.Base.Written != s.BytesWritten {
		t.Errorf("written %d, want the sync's %d", res.Base.Written, s.BytesWritten)
	}
	var creates, snapshot []string
	for _, m := range f.rec.Mutations() {
		if strings.HasPrefix(m, "lvcreate") && strings.Contains(m, "--name Base-3-0 ") {
			creates = append(creates, m)
		}
		if strings.Contains(m, "Base-3-0 ") || strings.HasSuffix(m, "Base-3-0") {
			snapshot = append(snapshot, m)
		}
	}
	wantLines(t, creates, []string{"lvcreate --snapshot --name Base-3-0 --addtag imgbased:base --setactivationskip n --activate y HostVG/Base-1-0"})
	mnt := filepath.Join(f.mnt, "Base-3-0")
	wantLines(t, snapshot, []string{
		"lvcreate --snapshot --name Base-3-0 --addtag imgbased:base --setactivationskip n --activate y HostVG/Base-1-0",
		"e2fsck -fy /dev/HostVG/Base-3-0",
		"tune2fs -U random /dev/HostVG/Base-3-0",
		"mount -t ext4 /dev/HostVG/Base-3-0 " + mnt,
		"umount " + mnt,
		"lvcreate --snapshot --name Base-3-0+1 --addtag imgbased:layer --setactivationskip n --activate y HostVG/Base-3-0",
		"lvchange --permission r --setactivationskip y --activate n HostVG/Base-3-0",
	})
	// The new base holds the image's tree, and the image's manifest.
	got := w.dev["/dev/HostVG/Base-3-0"]
	want, have := describeTree(t, w.image), describeTree(t, got)
	if d := manifest.Compare(want, have, manifest.CompareOptions{}); len(d) != 0 {
		t.Errorf("the new base differs from the image: %v", d)
	}
	rec, err := manifest.Load(filepath.Join(got, manifest.RecordPath))
	if err != nil {
		t.Fatal(err)
	}
	if d := manifest.Compare(want, rec, manifest.CompareOptions{}); len(d) != 0 {
		t.Errorf("the recorded manifest is not the image's: %v", d)
	}
	// The predecessor is untouched.
	if b, _ := os.ReadFile(filepath.Join(w.dev["/dev/HostVG/Base-1-0"], "usr/share/changes")); string(b) != "v1" {
		t.Errorf("the predecessor's file now holds %q", b)
	}
	if len(fb.added) != 1 || fb.added[0] != "Base-3-0+1" {
		t.Errorf("boot entries %v", fb.added)
	}
	if len(w.mnt) != 0 {
		t.Errorf("left mounted: %v", w.mnt)
	}
	// The image's tree is let go before the commit: a crash after it
	// (recover only finishes the boot entry) leaves nothing mounted.
	imgUmount, layerCreate := -1, -1
	for i, m := range f.rec.Lines() {
		if strings.HasPrefix(m, "umount ") && strings.Contains(m, "imgbase-image-") {
			imgUmount = i
		}
		if strings.Contains(m, "--name Base-3-0+1 ") {
			layerCreate = i
		}
	}
	if imgUmount < 0 || layerCreate < 0 || imgUmount > layerCreate {
		t.Errorf("the image's tree is unmounted at command %d, the layer created at %d: want it let go after the sync, before the layer:\n%s",
			imgUmount, layerCreate, strings.Join(f.rec.Lines(), "\n"))
	}
}

func TestUpdateDeltaFallsBackToFull(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*UpdateRequest, *deltaWorld)
		want string
	}{
		{"--full", func(r *UpdateRequest, _ *deltaWorld) { r.Full = true }, WhyFull},
		// Every file differs: the delta writes as much as a full copy.
		{"larger", func(_ *UpdateRequest, w *deltaWorld) {
			w.image = w.t.TempDir()
			writeTree(w.t, w.image, map[string]string{"usr/bin/other": strings.Repeat("x", 100)}, nil)
		}, WhyLarger},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, _, req, w := deltaFixture(t)
			tc.edit(&req, w)
			res, err := f.h.Update(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if res.Base.Way.Delta || res.Base.Way.Why != tc.want {
				t.Errorf("way %+v, want a full write because %s", res.Base.Way, tc.want)
			}
			if n := strings.Count(strings.Join(f.rec.Mutations(), "\n"), "lvcreate --thin --virtualsize 1073741824b --name Base-3-0 "); n != 1 {
				t.Errorf("%d full creations of Base-3-0, want 1:\n%s", n, strings.Join(f.rec.Mutations(), "\n"))
			}
			if len(w.mnt) != 0 {
				t.Errorf("left mounted: %v", w.mnt)
			}
		})
	}
}

// A failure at every mutating command of a delta update before the commit
// leaves no new LV, nothing mounted, the predecessor as it was and no
// journal.
func TestUpdateDeltaFailureAtEveryStepUndoes(t *testing.T) {
	f, _, req, _ := deltaFixture(t)
	if _, err := f.h.Update(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	total := len(f.rec.Mutations())
	for k := 0; k < total; k++ {
		f, fb, req, w := deltaFixture(t)
		// The failure comes before the world's effect: a failed mount
		// mounts nothing.
		w.next = &failAt{next: w.next, k: k}
		_, err := f.h.Update(context.Background(), req)
		muts := f.rec.Mutations()
		failed := muts[k]
		if strings.HasPrefix(failed, "tune2fs -T now") {
			continue // has a fallback; covered by the full path's test
		}
		var je *journal.Error
		if err == nil || (errors.As(err, &je) && je.Committed) {
			continue // after the commit: the full path's test covers recovery
		}
		if _, ok := w.dev["/dev/HostVG/Base-3-0"]; ok && !slices.Contains(muts, "lvremove --yes HostVG/Base-3-0") {
			t.Errorf("k=%d (%s): the snapshot was left; ran:\n%s", k, failed, strings.Join(muts, "\n"))
		}
		// A failed umount leaves its mount (the fake's mount table is not
		// the one unmountIfMounted reads to try again).
		if len(w.mnt) != 0 && !strings.HasPrefix(failed, "umount ") {
			t.Errorf("k=%d (%s): left mounted %v; ran:\n%s", k, failed, w.mnt, strings.Join(muts, "\n"))
		}
		if b, _ := os.ReadFile(filepath.Join(w.dev["/dev/HostVG/Base-1-0"], "usr/share/changes")); string(b) != "v1" {
			t.Errorf("k=%d (%s): the predecessor changed", k, failed)
		}
		if len(fb.added) != 0 {
			t.Errorf("k=%d (%s): boot entries %v", k, failed, fb.added)
		}
		if _, err := os.Stat(filepath.Join(f.h.Root, JournalFile)); !os.IsNotExist(err) {
			t.Errorf("k=%d (%s): journal left behind", k, failed)
		}
	}
}

// A dry run changes nothing and shows the delta's commands.
func TestUpdateDeltaDryRun(t *testing.T) {
	f, _, req, w := deltaFixture(t)
	f.h.Run = &command.Dry{Next: w, Out: f.out}
	res, err := f.h.Update(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Base.Way.Delta || res.Base.Way.From != "Base-1-0" {
		t.Errorf("way %+v", res.Base.Way)
	}
	if m := f.rec.Mutations(); len(m) != 0 {
		t.Errorf("a dry run changed:\n%s", strings.Join(m, "\n"))
	}
	out := f.out.String()
	for _, want := range []string{"# delta from Base-1-0", "lvcreate --snapshot --name Base-3-0 --addtag imgbased:base", "tune2fs -U random /dev/HostVG/Base-3-0", "# sync the tree of "} {
		if !strings.Contains(out, want) {
			t.Errorf("the dry run's output lacks %q:\n%s", want, out)
		}
	}
}

// base --add takes the delta path too, from the running layer's base or
// the one --from-base names, grown when the new base is larger; a failure
// removes the snapshot.
func TestAddBaseByDelta(t *testing.T) {
	f, _, req, w := deltaFixture(t)
	// Base-2-0 is 2 GiB: the new base of 3 GiB grows.
	w.dev["/dev/HostVG/Base-2-0"] = w.dev["/dev/HostVG/Base-1-0"]
	req.FromBase, req.Size = "Base-2-0", 3<<30
	res, err := f.h.AddBaseFromImage(context.Background(), req.ImageRequest)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Way.Delta || res.Way.From != "Base-2-0" || res.Way.Sync == nil || res.Way.Sync.Added != 1 {
		t.Errorf("way %+v", res.Way)
	}
	mnt := filepath.Join(f.mnt, "Base-3-0")
	var got []string
	for _, m := range f.rec.Mutations() {
		if strings.Contains(m, "Base-3-0") {
			got = append(got, m)
		}
	}
	wantLines(t, got, []string{
		"lvcreate --snapshot --name Base-3-0 --addtag imgbased:base --setactivationskip n --activate y HostVG/Base-2-0",
		"e2fsck -fy /dev/HostVG/Base-3-0",
		"tune2fs -U random /dev/HostVG/Base-3-0",
		"lvextend --size 3221225472b HostVG/Base-3-0",
		"mount -t ext4 /dev/HostVG/Base-3-0 " + mnt,
		"resize2fs /dev/HostVG/Base-3-0",
		"umount " + mnt,
		"lvchange --permission r --setactivationskip y --activate n HostVG/Base-3-0",
	})

	f, _, req, w = deltaFixture(t)
	w.next = &failAt{next: w.next, k: 6} // activate, mount, umount, deactivate, snapshot, e2fsck, tune2fs
	if _, err := f.h.AddBaseFromImage(context.Background(), req.ImageRequest); err == nil {
		t.Fatal("no error")
	}
	muts := f.rec.Mutations()
	if muts[6] != "tune2fs -U random /dev/HostVG/Base-3-0" || muts[len(muts)-1] != "lvremove --yes HostVG/Base-3-0" {
		t.Errorf("a failed UUID change: ran\n%s\nwant the snapshot removed last", strings.Join(muts, "\n"))
	}
	// Base-10-0 holds no filesystem: a full write.
	f, _, req, _ = deltaFixture(t)
	req.FromBase = "Base-10-0"
	if res, err := f.h.AddBaseFromImage(context.Background(), req.ImageRequest); err != nil || res.Way.Why != WhyFSDiffers {
		t.Errorf("from a base without a filesystem: %+v, %v; want a full write because %s", res, err, WhyFSDiffers)
	}
}

// A record carried by a tree gives the delta its hashes without a file
// being read, when the tree's walk does not contradict it; a tree without
// one, or with a stale one, is read. A hash doctored in both records (the
// same wrong hash for a file the two trees share) survives into the new
// base's record only when no file was read to describe the trees. (With
// one record, the other tree's file is read and found equal to the
// recorded one: the record's hash is taken then too, so the records of
// the other cases are true.)
func TestUpdateByDeltaHashesFromRecords(t *testing.T) {
	doctored := [32]byte{0xde, 0xad}
	for _, tc := range []struct {
		name             string
		imgRec, predRec  bool
		staleImg         bool
		want             string
		wantDoctoredHash bool
	}{
		{"both records", true, true, false, RecordsBoth, true},
		{"the image's record", true, false, false, RecordImage, false},
		{"the predecessor's record", false, true, false, RecordPredecessor, false},
		{"no record", false, false, false, RecordNone, false},
		{"a stale image record", true, true, true, RecordPredecessor, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, _, req, w := deltaFixture(t)
			record := func(root string) {
				m, err := manifest.Record(context.Background(), root)
				if err != nil {
					t.Fatal(err)
				}
				if !tc.wantDoctoredHash {
					return
				}
				m.Index()["usr/bin/same"].SHA256 = doctored
				if err := manifest.Save(filepath.Join(root, manifest.RecordPath), m); err != nil {
					t.Fatal(err)
				}
			}
			// The image's root from long ago: a record's directory made
			// in the new base after the sync would show in its mtime.
			if tc.imgRec {
				if err := os.Mkdir(filepath.Join(w.image, manifest.RecordDir), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			long := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
			if err := os.Chtimes(w.image, long, long); err != nil {
				t.Fatal(err)
			}
			if tc.imgRec {
				record(w.image)
			}
			if tc.predRec {
				record(w.dev["/dev/HostVG/Base-1-0"])
			}
			if tc.staleImg {
				// Changed after its record was made, as a careless build
				// might: the walk sees the mode.
				if err := os.Chmod(filepath.Join(w.image, "usr/share/changes"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			res, err := f.h.Update(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if way := res.Base.Way; !way.Delta || way.Hashes != tc.want || !strings.HasSuffix(way.String(), "; hashes from "+tc.want) {
				t.Fatalf("way %+v (%s), want a delta with hashes from %s", way, way, tc.want)
			}
			got := w.dev["/dev/HostVG/Base-3-0"]
			want, have := describeTree(t, w.image), describeTree(t, got)
			if d := manifest.Compare(want, have, manifest.CompareOptions{}); len(d) != 0 {
				t.Errorf("the new base differs from the image: %v", d)
			}
			rec, err := manifest.Load(filepath.Join(got, manifest.RecordPath))
			if err != nil {
				t.Fatal(err)
			}
			if d := manifest.Compare(want, rec, manifest.CompareOptions{}); (len(d) != 0) != tc.wantDoctoredHash {
				t.Errorf("the new base's record against the image's tree: %v; want a difference only in the doctored hash: %v", d, tc.wantDoctoredHash)
			}
			// The new base's record vouches for it in turn: the next delta
			// from it takes its hashes without reading.
			walked, err := manifest.Build(context.Background(), got, manifest.BuildOptions{Exclude: excluded, NoHash: true})
			if err != nil {
				t.Fatal(err)
			}
			if _, d := manifest.HashesFrom(walked, rec); d != nil {
				t.Errorf("the new base's record does not describe its tree: %v", d)
			}
			if tc.wantDoctoredHash && rec.Index()["usr/bin/same"].SHA256 != doctored {
				t.Errorf("both records vouch for usr/bin/same, yet its hash was computed")
			}
		})
	}
}
