package host

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbase/imgbase/internal/boot"
	"github.com/imgbase/imgbase/internal/command"
	"github.com/imgbase/imgbase/internal/command/commandtest"
	"github.com/imgbase/imgbase/internal/hooks"
	"github.com/imgbase/imgbase/internal/system"
)

const lvsLine = "lvs --reportformat json --units b --nosuffix -o vg_name,lv_name,lv_path,lv_attr,lv_size,lv_tags,origin,pool_lv,data_percent,metadata_percent,lv_metadata_size,chunk_size,lv_kernel_major,lv_kernel_minor,vg_tags,vg_size,vg_free,thin_id"

type fixture struct {
	h   *Host
	rec *commandtest.Recorder
	out *bytes.Buffer
	mnt string
}

// newFixture makes a Host whose lvs answers with testdata/<report>.json and
// whose / is the device major:minor.
func newFixture(t *testing.T, report string, major, minor int) *fixture {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", report+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return newFixtureReport(t, data, major, minor)
}

// newFixtureReport is newFixture with the lvs report given.
func newFixtureReport(t *testing.T, data []byte, major, minor int) *fixture {
	t.Helper()
	rec := &commandtest.Recorder{}
	rec.On("lvs ", string(data), nil)
	rec.On("blkid -p -o value -s TYPE /dev/HostVG/Base-10-0", "", &command.Error{ExitCode: 2})
	rec.On("blkid -p -o value -s TYPE", "ext4\n", nil)
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/fstab"), []byte("/dev/HostVG/Base-1-0+1 / ext4 defaults,discard 0 1\n/dev/HostVG/var /var ext4 defaults,discard 0 2\n"), 0o644)
	f := &fixture{rec: rec, out: &bytes.Buffer{}, mnt: filepath.Join(root, "run/imgbase/mnt")}
	f.h = &Host{System: system.System{
		Run: rec, Log: slog.New(slog.DiscardHandler), Out: f.out, Root: root,
		RootDevice: func() (int, int, error) { return major, minor, nil },
		RootFSType: func() string { return "ext4" },
		MountDir:   f.mnt,
	}}
	return f
}

// layerFstab puts an fstab where the fake mount of layer would show it.
func (f *fixture) layerFstab(t *testing.T, layer, content string) string {
	t.Helper()
	p := filepath.Join(f.mnt, layer, "etc/fstab")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func wantLines(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestLayoutIsOneLVMProcess(t *testing.T) {
	f := newFixture(t, "running", 254, 5)
	tree, err := f.h.Layout(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, f.rec.Lines(), []string{lvsLine})
	if got := tree.Text(f.h.CurrentLayer(tree).Name()); got != "Base-1-0\n +- Base-1-0+1 (current)\n +- Base-1-0+2\nBase-2-0\n +- Base-2-0+1\nBase-10-0\n" {
		t.Errorf("tree:\n%s", got)
	}
}

func TestInitFromRoot(t *testing.T) {
	f := newFixture(t, "preinit", 254, 4)
	fstab := f.layerFstab(t, "Base-1-0+1", "# comment\n/dev/mapper/HostVG-root / ext4 errors=remount-ro 0 1\nUUID=abc /boot ext4 defaults 0 2\n")
	res, err := f.h.Init(context.Background(), "Base-1-0", "/")
	if err != nil {
		t.Fatal(err)
	}
	if res.Base != "Base-1-0" || res.Layer != "Base-1-0+1" || res.From != "root" || res.Pool != "pool00" {
		t.Errorf("result %+v", res)
	}
	mnt := filepath.Join(f.mnt, "Base-1-0+1")
	wantLines(t, f.rec.Lines(), []string{
		lvsLine,
		"vgchange --addtag imgbased:vg HostVG",
		"lvchange --addtag imgbased:pool HostVG/pool00",
		"lvchange --addtag imgbased:init HostVG/root",
		"lvcreate --snapshot --name Base-1-0 --addtag imgbased:base --setactivationskip y --permission r --activate n HostVG/root",
		"lvcreate --snapshot --name Base-1-0+1 --addtag imgbased:layer --setactivationskip n --activate y HostVG/Base-1-0",
		"blkid -p -o value -s TYPE /dev/HostVG/Base-1-0+1",
		"e2fsck -fy /dev/HostVG/Base-1-0+1",
		"tune2fs -U random /dev/HostVG/Base-1-0+1",
		"mount -t ext4 -o discard /dev/HostVG/Base-1-0+1 " + mnt,
		"umount " + mnt,
	})
	data, _ := os.ReadFile(fstab)
	if want := "# comment\n/dev/HostVG/Base-1-0+1 / ext4 errors=remount-ro,discard 0 1\nUUID=abc /boot ext4 defaults 0 2\n"; string(data) != want {
		t.Errorf("fstab:\n%s\nwant:\n%s", data, want)
	}
}

func TestInitNVRFromImageMetadata(t *testing.T) {
	f := newFixture(t, "preinit", 254, 4)
	f.layerFstab(t, "imgbase-node-4.5-1+1", "")
	meta := filepath.Join(f.h.Root, NVRFile)
	os.MkdirAll(filepath.Dir(meta), 0o755)
	os.WriteFile(meta, []byte("imgbase-node-4.5-1\n"), 0o644)
	res, err := f.h.Init(context.Background(), "", "HostVG/root")
	if err != nil {
		t.Fatal(err)
	}
	if res.Base != "imgbase-node-4.5-1" || res.Layer != "imgbase-node-4.5-1+1" {
		t.Errorf("result %+v", res)
	}
}

func TestInitRefusalsRunNothing(t *testing.T) {
	for _, tc := range []struct {
		name, report, nvr, from, want string
	}{
		{"initialised", "init", "Base-2-0", "/", "already managed"},
		{"not thin", "preinit", "Base-1-0", "HostVG/swap", "not a thin LV"},
		{"no such LV", "preinit", "Base-1-0", "HostVG/nope", "no such logical volume"},
		{"bad nvr", "preinit", "Base", "/", "NAME-VERSION-RELEASE"},
		{"bad lv chars", "preinit", "Base-1-0$", "/", "cannot add base"},
		{"no metadata", "preinit", "", "/", "no NVR given"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.report, 254, 4)
			_, err := f.h.Init(context.Background(), tc.nvr, tc.from)
			var r *ErrRefused
			if !errors.As(err, &r) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a refusal containing %q", err, tc.want)
			}
			if m := f.rec.Mutations(); len(m) != 0 {
				t.Errorf("a refusal ran %v", m)
			}
		})
	}
}

// A layer of a base installed from an image carries the image's fstab:
// it gets the host's /boot and swap from the running fstab, in place of
// the image's own lines for them.
func TestAddLayerOnImageBaseMountsHostBoot(t *testing.T) {
	f := newFixture(t, "running", 254, 5)
	os.WriteFile(filepath.Join(f.h.Root, "etc/fstab"), []byte("/dev/HostVG/Base-1-0+1 / ext4 defaults,discard 0 1\nUUID=b00t /boot ext4 defaults 0 2\n/dev/HostVG/swap none swap sw 0 0\n/dev/HostVG/var /var ext4 defaults,discard 0 2\n"), 0o644)
	fstab := f.layerFstab(t, "Base-1-0+3", "UUID=image / ext4 errors=remount-ro 0 1\nUUID=buildhost /boot ext4 defaults 0 2\n")
	if _, err := f.h.AddLayer(context.Background(), "Base-1-0"); err != nil {
		t.Fatal(err)
	}
	want := "/dev/HostVG/Base-1-0+3 / ext4 errors=remount-ro,discard 0 1\nUUID=b00t /boot ext4 defaults 0 2\n/dev/HostVG/swap none swap sw 0 0\n/dev/HostVG/var /var ext4 defaults,discard 0 2\n"
	if data, _ := os.ReadFile(fstab); string(data) != want {
		t.Errorf("fstab:\n%s\nwant:\n%s", data, want)
	}
}

func TestAddLayerOnBaseBudget(t *testing.T) {
	f := newFixture(t, "running", 254, 5)
	fstab := f.layerFstab(t, "Base-1-0+3", "/dev/HostVG/Base-1-0+1 / ext4 defaults,discard 0 1\n")
	res, err := f.h.AddLayer(context.Background(), "Base-1-0")
	if err != nil {
		t.Fatal(err)
	}
	// The shared /var volume is mounted by the new layer too.
	if data, _ := os.ReadFile(fstab); string(data) != "/dev/HostVG/Base-1-0+3 / ext4 defaults,discard 0 1\n/dev/HostVG/var /var ext4 defaults,discard 0 2\n" {
		t.Errorf("fstab:\n%s", data)
	}
	if res.Name != "Base-1-0+3" || res.Origin != "Base-1-0" {
		t.Errorf("result %+v", res)
	}
	if n := f.rec.Count("lvs", "lvcreate", "lvchange", "lvremove", "vgchange"); n > 4 {
		t.Errorf("layer --add ran %d LVM processes, budget 4", n)
	}
	wantLines(t, f.rec.Mutations()[:1], []string{
		"lvcreate --snapshot --name Base-1-0+3 --addtag imgbased:layer --setactivationskip n --activate y HostVG/Base-1-0",
	})
}

func TestAddLayerDefaultTargetsNewestBase(t *testing.T) {
	// Base-10-0 sorts after Base-2-0 (rpmvercmp: 10 > 2); it is empty.
	f := newFixture(t, "running", 254, 5)
	res, err := f.h.AddLayer(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Name != "Base-10-0+1" || res.Origin != "Base-10-0" || !res.NoFS {
		t.Errorf("result %+v", res)
	}
	wantLines(t, f.rec.Mutations(), []string{
		"lvcreate --snapshot --name Base-10-0+1 --addtag imgbased:layer --setactivationskip n --activate y HostVG/Base-10-0",
	})
}

func TestAddLayerOnLayer(t *testing.T) {
	f := newFixture(t, "running", 254, 5)
	f.layerFstab(t, "Base-2-0+2", "")
	res, err := f.h.AddLayer(context.Background(), "Base-2-0+1")
	if err != nil {
		t.Fatal(err)
	}
	if res.Name != "Base-2-0+2" || res.Origin != "Base-2-0+1" {
		t.Errorf("result %+v", res)
	}
}

// A layer made from the running layer is a snapshot taken while layer
// --add's journal is in it. The copy names the new layer as the one to
// remove: left there, the new layer's first boot would undo its own
// creation (and a layer made from it, the one before).
func TestAddLayerDropsTheJournalItsSnapshotCopied(t *testing.T) {
	f := newFixture(t, "running", 254, 5)
	fstab := f.layerFstab(t, "Base-2-0+2", "")
	copied := filepath.Join(filepath.Dir(filepath.Dir(fstab)), JournalFile)
	if err := os.MkdirAll(filepath.Dir(copied), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(copied, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := f.h.AddLayer(context.Background(), "Base-2-0+1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(copied); !os.IsNotExist(err) {
		t.Errorf("the new layer keeps the journal of its own addition: %v", err)
	}
}

func TestAddLayerFailureUndoes(t *testing.T) {
	f := newFixture(t, "running", 254, 5)
	f.rec.Once("tune2fs", "", &command.Error{Argv: []string{"tune2fs"}, ExitCode: 1, Stderr: "boom"})
	_, err := f.h.AddLayer(context.Background(), "Base-1-0")
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("err = %v", err)
	}
	m := f.rec.Mutations()
	if last := m[len(m)-1]; last != "lvremove --yes HostVG/Base-1-0+3" {
		t.Errorf("last command %q, want the new layer removed; all: %v", last, m)
	}
}

// A crash (or a power cut) while layer --add writes the entry leaves its
// journal; recover takes the layer and its entry back, so that no layer
// is left without an entry, nor an entry of a half-made layer.
func TestAddLayerCrashThenRecover(t *testing.T) {
	f := newFixture(t, "running", 254, 5)
	f.layerFstab(t, "Base-1-0+3", "")
	jpath := filepath.Join(f.h.Root, JournalFile)
	var left []byte
	b := &crashingBoot{at: func() { left, _ = os.ReadFile(jpath) }}
	f.h.Boot = b
	if _, err := f.h.AddLayer(context.Background(), "Base-1-0"); err == nil {
		t.Fatal("the entry failed, yet layer --add succeeded")
	}
	if !strings.Contains(string(left), `"kind": "boot-entry"`) {
		t.Fatalf("no journal while the entry was written:\n%s", left)
	}
	// The crash: the process is gone, its journal is what it wrote last.
	if err := os.WriteFile(jpath, left, 0o600); err != nil {
		t.Fatal(err)
	}
	n := len(f.rec.Mutations())
	out, err := f.h.Recover(context.Background())
	if err != nil || out == nil || !out.RolledBack {
		t.Fatalf("Recover = %+v, %v; want the layer's addition undone", out, err)
	}
	wantLines(t, f.rec.Mutations()[n:], []string{"lvremove --yes HostVG/Base-1-0+3"})
	if strings.Join(b.removed, " ") != "Base-1-0+3 Base-1-0+3" {
		t.Errorf("entries removed: %v; want Base-1-0+3's by the failed run and again by recover", b.removed)
	}
	if _, err := os.Stat(jpath); !os.IsNotExist(err) {
		t.Errorf("the journal is left after recover: %v", err)
	}
}

// crashingBoot fails to write an entry, calling at first.
type crashingBoot struct {
	fakeBoot
	at func()
}

func (b *crashingBoot) AddLayer(context.Context, BootLayer) error {
	b.at()
	return errors.New("cannot write the entry: power cut")
}

func TestAddLayerRefusals(t *testing.T) {
	f := newFixture(t, "running", 254, 5)
	if _, err := f.h.AddLayer(context.Background(), "Nope-1-0"); err == nil || !strings.Contains(err.Error(), "no such base or layer") {
		t.Errorf("err = %v", err)
	}
	f2 := newFixture(t, "preinit", 254, 4)
	if _, err := f2.h.AddLayer(context.Background(), ""); err == nil || !strings.Contains(err.Error(), "layout --init") {
		t.Errorf("err = %v", err)
	}
	if m := append(f.rec.Mutations(), f2.rec.Mutations()...); len(m) != 0 {
		t.Errorf("refusals ran %v", m)
	}
}

func TestMetadataNearlyFullRefusesCreating(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "running.json"))
	if err != nil {
		t.Fatal(err)
	}
	full := bytes.Replace(data, []byte(`"metadata_percent": "10.01"`), []byte(`"metadata_percent": "93.50"`), 1)
	f := newFixtureReport(t, full, 254, 5)
	ctx := context.Background()
	_, err = f.h.AddLayer(ctx, "")
	if err == nil || !strings.Contains(err.Error(), "93.5% used") || !strings.Contains(err.Error(), "lvextend --poolmetadatasize +64M HostVG/pool00") {
		t.Errorf("layer --add: %v", err)
	}
	if err := f.h.AddEmptyBase(ctx, "Base-3-0", 1<<30); err == nil {
		t.Errorf("base --add: no refusal")
	}
	if m := f.rec.Mutations(); len(m) != 0 {
		t.Errorf("refusals ran %v", m)
	}
	// Removing frees metadata: it stays allowed.
	if err := f.h.RemoveLayer(ctx, "Base-1-0+2"); err != nil {
		t.Errorf("layer --remove on a pool with full metadata: %v", err)
	}
}

func TestRemoveLayer(t *testing.T) {
	f := newFixture(t, "running", 254, 5)
	ctx := context.Background()
	if err := f.h.RemoveLayer(ctx, "Base-1-0+1"); err == nil || !strings.Contains(err.Error(), "running layer") {
		t.Errorf("removing the running layer: %v", err)
	}
	if err := f.h.RemoveLayer(ctx, "Base-1-0"); err == nil || !strings.Contains(err.Error(), "no such layer") {
		t.Errorf("removing a base as a layer: %v", err)
	}
	// Mounted somewhere (254:6 is Base-1-0+2): refused until unmounted.
	table := filepath.Join(f.h.Root, "proc/self/mountinfo")
	os.MkdirAll(filepath.Dir(table), 0o755)
	os.WriteFile(table, []byte("26 1 254:5 / / rw - ext4 /dev/mapper/HostVG-Base--1--0+1 rw\n"+
		"90 26 254:6 / /mnt/other rw - ext4 /dev/mapper/HostVG-Base--1--0+2 rw\n"), 0o644)
	if err := f.h.RemoveLayer(ctx, "Base-1-0+2"); err == nil || !strings.Contains(err.Error(), "mounted") {
		t.Errorf("removing a mounted layer: %v", err)
	}
	if m := f.rec.Mutations(); len(m) != 0 {
		t.Fatalf("refusals ran %v", m)
	}
	os.Remove(table)
	if err := f.h.RemoveLayer(ctx, "Base-1-0+2"); err != nil {
		t.Fatal(err)
	}
	wantLines(t, f.rec.Mutations(), []string{"lvremove --yes HostVG/Base-1-0+2"})
}

func TestRemoveBase(t *testing.T) {
	f := newFixture(t, "running", 254, 5)
	ctx := context.Background()
	if err := f.h.RemoveBase(ctx, "Base-1-0"); err == nil || !strings.Contains(err.Error(), "running layer Base-1-0+1") {
		t.Errorf("removing the running base: %v", err)
	}
	if err := f.h.RemoveBase(ctx, "Base-9-0"); err == nil {
		t.Error("removing a missing base succeeded")
	}
	if m := f.rec.Mutations(); len(m) != 0 {
		t.Fatalf("refusals ran %v", m)
	}
	// The admin's base-remove hooks run around it; a failing pre-hook
	// keeps the base.
	hooksDir := filepath.Join(f.h.Root, "etc/imgbased/hooks.d")
	for _, p := range []string{"pre-base-remove/10-check", "post-base-remove/10-note"} {
		os.MkdirAll(filepath.Dir(filepath.Join(hooksDir, p)), 0o755)
		os.WriteFile(filepath.Join(hooksDir, p), []byte("#!/bin/sh\n"), 0o755)
	}
	f.h.Hooks = &hooks.Hooks{Dir: hooksDir, Run: f.rec, Log: slog.New(slog.DiscardHandler)}
	f.rec.Once("timeout -k 10 300 "+filepath.Join(hooksDir, "pre-base-remove/10-check"), "", &command.Error{ExitCode: 1})
	if err := f.h.RemoveBase(ctx, "Base-2-0"); err == nil || !strings.Contains(err.Error(), "10-check") {
		t.Errorf("a failing pre-base-remove hook: %v", err)
	}
	if m := f.rec.Mutations(); len(m) != 1 || !strings.Contains(m[0], "pre-base-remove/10-check Base-2-0") {
		t.Fatalf("a vetoed removal ran %v", m)
	}
	if err := f.h.RemoveBase(ctx, "Base-2-0"); err != nil {
		t.Fatal(err)
	}
	m := f.rec.Mutations()[1:]
	if len(m) != 3 || !strings.HasSuffix(m[0], "pre-base-remove/10-check Base-2-0") ||
		m[1] != "lvremove --yes HostVG/Base-2-0+1 HostVG/Base-2-0" || !strings.HasSuffix(m[2], "post-base-remove/10-note Base-2-0") {
		t.Errorf("removal ran:\n%s", strings.Join(m, "\n"))
	}
}

func TestAddEmptyBase(t *testing.T) {
	f := newFixture(t, "init", 254, 5)
	if err := f.h.AddEmptyBase(context.Background(), "Base-2-0", 1<<30); err != nil {
		t.Fatal(err)
	}
	wantLines(t, f.rec.Mutations(), []string{
		"lvcreate --thin --virtualsize 1073741824b --name Base-2-0 --addtag imgbased:base HostVG/pool00",
		"lvchange --permission r --setactivationskip y --activate n HostVG/Base-2-0",
	})
	f2 := newFixture(t, "init", 254, 5)
	for _, name := range []string{"Base-1-0", "root", "Base-2-0+1"} {
		if err := f2.h.AddEmptyBase(context.Background(), name, 1<<30); err == nil {
			t.Errorf("base %q was accepted", name)
		}
	}
	if m := f2.rec.Mutations(); len(m) != 0 {
		t.Errorf("refusals ran %v", m)
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	f := newFixture(t, "running", 254, 5)
	f.h.Run = &command.Dry{Next: f.rec, Out: f.out}
	res, err := f.h.AddLayer(context.Background(), "Base-1-0")
	if err != nil {
		t.Fatal(err)
	}
	if res.Name != "Base-1-0+3" {
		t.Errorf("result %+v", res)
	}
	if m := f.rec.Mutations(); len(m) != 0 {
		t.Errorf("dry run ran %v", m)
	}
	mnt := filepath.Join(f.mnt, "Base-1-0+3")
	step := func(n int, what string) string {
		return fmt.Sprintf("# add layer Base-1-0+3: step %d/3 %s", n, what)
	}
	want := strings.Join([]string{
		step(1, "create-layer lv=Base-1-0+3 mnt="+mnt+" origin=Base-1-0 vg=HostVG"),
		"lvcreate --snapshot --name Base-1-0+3 --addtag imgbased:layer --setactivationskip n --activate y HostVG/Base-1-0",
		step(2, "prepare-layer lv=Base-1-0+3 mnt="+mnt+" vg=HostVG"),
		"e2fsck -fy /dev/HostVG/Base-1-0+3",
		"tune2fs -U random /dev/HostVG/Base-1-0+3",
		"mount -t ext4 -o discard /dev/HostVG/Base-1-0+3 " + mnt,
		"# write " + mnt + "/etc/fstab",
		"umount " + mnt,
		step(3, "boot-entry base=Base-1-0 latest=n lv=Base-1-0+3 mnt="+mnt+" try=y vg=HostVG"),
		"# add layer Base-1-0+3: commit",
	}, "\n") + "\n"
	if f.out.String() != want {
		t.Errorf("dry output:\n%s\nwant:\n%s", f.out.String(), want)
	}
	if _, err := os.Stat(f.mnt); !os.IsNotExist(err) {
		t.Errorf("dry run created %s", f.mnt)
	}
}

// fakeBoot records what the Host asks of the boot loader.
type fakeBoot struct {
	def            string
	added, removed []string
	setups         int
	noEntry        map[string]bool // layers without an entry
}

func (b *fakeBoot) AddLayer(_ context.Context, l BootLayer) error {
	b.added = append(b.added, l.Name)
	return nil
}
func (b *fakeBoot) RemoveLayer(_ context.Context, name string) error {
	if b.noEntry[name] {
		return fmt.Errorf("cannot remove the boot entry of %s: %w", name, boot.ErrNoEntry)
	}
	b.removed = append(b.removed, name)
	return nil
}
func (b *fakeBoot) Setup(context.Context) error { b.setups++; return nil }
func (b *fakeBoot) Default() (string, error)    { return b.def, nil }

func TestRemovingTheDefaultIsRefused(t *testing.T) {
	f := newFixture(t, "running", 254, 5)
	fb := &fakeBoot{def: "Base-2-0+1"}
	f.h.Boot = fb
	ctx := context.Background()
	if err := f.h.RemoveLayer(ctx, "Base-2-0+1"); err == nil || !strings.Contains(err.Error(), "boots by default") {
		t.Errorf("remove default layer: %v", err)
	}
	if err := f.h.RemoveBase(ctx, "Base-2-0"); err == nil || !strings.Contains(err.Error(), "boots by default") {
		t.Errorf("remove base of default layer: %v", err)
	}
	if m := f.rec.Mutations(); len(m) != 0 || len(fb.removed) != 0 {
		t.Errorf("refusals ran %v, removed entries %v", m, fb.removed)
	}
	if err := f.h.RemoveLayer(ctx, "Base-1-0+2"); err != nil {
		t.Fatal(err)
	}
	if len(fb.removed) != 1 || fb.removed[0] != "Base-1-0+2" {
		t.Errorf("entries removed %v", fb.removed)
	}
}

func TestInitWiresTheLoaderOnce(t *testing.T) {
	f := newFixture(t, "preinit", 254, 4)
	fb := &fakeBoot{}
	f.h.Boot = fb
	f.layerFstab(t, "Base-1-0+1", "")
	if _, err := f.h.Init(context.Background(), "Base-1-0", ""); err != nil {
		t.Fatal(err)
	}
	if fb.setups != 1 || len(fb.added) != 1 || fb.added[0] != "Base-1-0+1" {
		t.Errorf("setups %d, entries %v", fb.setups, fb.added)
	}
}

// The same verbs on reports recorded from real lvm2 (test/vm's
// TestRecordLVMFixtures).
func TestVerbsOnRealReports(t *testing.T) {
	f := newFixture(t, "real-preinit", 253, 4)
	f.layerFstab(t, "Base-1-0+1", "/dev/mapper/HostVG-root / ext4 errors=remount-ro 0 1\n")
	if _, err := f.h.Init(context.Background(), "Base-1-0", "/"); err != nil {
		t.Fatal(err)
	}
	if m := f.rec.Mutations(); len(m) < 5 || m[3] != "lvcreate --snapshot --name Base-1-0 --addtag imgbased:base --setactivationskip y --permission r --activate n HostVG/root" {
		t.Errorf("init on the real report ran %v", m)
	}
	f = newFixture(t, "real-many", 253, 5)
	tree, err := f.h.Layout(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cur := f.h.CurrentLayer(tree)
	if cur == nil || cur.Name() != "Base-1-0+1" {
		t.Fatalf("current %v", cur)
	}
	if got := tree.Text(cur.Name()); got != "Base-1-0\n +- Base-1-0+1 (current)\n +- Base-1-0+2\nBase-2-0\nimgbase-test-2.0-1\n +- imgbase-test-2.0-1+1\n" {
		t.Errorf("tree:\n%s", got)
	}
	if err := f.h.RemoveBase(context.Background(), "Base-1-0"); err == nil {
		t.Error("removed the running base")
	}
	if err := f.h.RemoveLayer(context.Background(), "Base-1-0+2"); err != nil {
		t.Fatal(err)
	}
	wantLines(t, f.rec.Mutations(), []string{"lvremove --yes HostVG/Base-1-0+2"})
}

// extHeader is the first 4 KiB of an ext4 device: clean or with a journal
// to replay, with or without metadata_csum_seed (metadata_csum always).
func extHeader(clean, seed bool) []byte {
	h := make([]byte, 4096)
	le := binary.LittleEndian
	le.PutUint16(h[1024+0x38:], 0xEF53)
	le.PutUint16(h[1024+0x3A:], 1) // valid
	le.PutUint32(h[1024+0x5C:], 0x4)
	incompat := uint32(0x2 | 0x40)
	if !clean {
		incompat |= 0x4 // needs_recovery
	}
	if seed {
		incompat |= 0x2000
	}
	le.PutUint32(h[1024+0x60:], incompat)
	le.PutUint32(h[1024+0x64:], 0x400)
	return h
}

func TestAddLayerOfSealedCleanBaseNeedsNoCheck(t *testing.T) {
	f := newFixture(t, "running", 254, 5)
	f.layerFstab(t, "Base-1-0+3", "")
	f.h.ReadHeader = func(string) ([]byte, error) { return extHeader(true, true), nil }
	mnt := filepath.Join(f.mnt, "Base-1-0+3")
	// The fake mount shows in the mount table the step writing the boot
	// entry reads before it unmounts.
	os.MkdirAll(filepath.Join(f.h.Root, "proc/self"), 0o755)
	os.WriteFile(filepath.Join(f.h.Root, "proc/self/mountinfo"), []byte("99 1 254:9 / "+mnt+" rw - ext4 /dev/HostVG/Base-1-0+3 rw\n"), 0o644)
	if _, err := f.h.AddLayer(context.Background(), "Base-1-0"); err != nil {
		t.Fatal(err)
	}
	// The budget of layer --add: lvs for the layout, lvcreate for the
	// snapshot, tune2fs for its UUID (one superblock write with the seed),
	// mount and umount to write its fstab. No blkid: the type is read from
	// the superblock; no e2fsck: a sealed base's clean superblock is true.
	wantLines(t, f.rec.Lines(), []string{
		lvsLine,
		"lvcreate --snapshot --name Base-1-0+3 --addtag imgbased:layer --setactivationskip n --activate y HostVG/Base-1-0",
		"tune2fs -T now -U random /dev/HostVG/Base-1-0+3",
		"mount -t ext4 -o discard /dev/HostVG/Base-1-0+3 " + mnt,
		"umount " + mnt,
	})
	if n := len(f.rec.Lines()); n > 5 {
		t.Errorf("layer --add ran %d processes, budget 5", n)
	}
}

func TestAddLayerOfDirtyBaseIsChecked(t *testing.T) {
	f := newFixture(t, "running", 254, 5)
	f.layerFstab(t, "Base-1-0+3", "")
	f.h.ReadHeader = func(string) ([]byte, error) { return extHeader(false, true), nil }
	if _, err := f.h.AddLayer(context.Background(), "Base-1-0"); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(f.rec.Lines(), "\n")
	if !strings.Contains(got, "e2fsck -fy /dev/HostVG/Base-1-0+3\ntune2fs -U random /dev/HostVG/Base-1-0+3") {
		t.Errorf("a base whose journal needs replaying was not checked:\n%s", got)
	}
}

func TestAddLayerOfALayerIsChecked(t *testing.T) {
	// A layer is writable, maybe mounted: its clean superblock may be
	// stale the moment it is read.
	f := newFixture(t, "running", 254, 5)
	f.layerFstab(t, "Base-2-0+2", "")
	f.h.ReadHeader = func(string) ([]byte, error) { return extHeader(true, true), nil }
	if _, err := f.h.AddLayer(context.Background(), "Base-2-0+1"); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.rec.Lines(), "\n"); !strings.Contains(got, "e2fsck -fy /dev/HostVG/Base-2-0+2") {
		t.Errorf("a layer of a layer was not checked:\n%s", got)
	}
}

func TestInitMakesTheBaseCleanAndSeeded(t *testing.T) {
	f := newFixture(t, "preinit", 254, 4)
	f.layerFstab(t, "Base-1-0+1", "")
	f.h.ReadHeader = func(dev string) ([]byte, error) {
		switch dev {
		case "/dev/HostVG/root": // mounted, made without the seed
			return extHeader(false, false), nil
		case "/dev/HostVG/Base-1-0": // after e2fsck
			return extHeader(true, false), nil
		}
		return extHeader(true, true), nil
	}
	if _, err := f.h.Init(context.Background(), "Base-1-0", "/"); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(f.mnt, "Base-1-0+1")
	wantLines(t, f.rec.Lines()[4:], []string{
		"lvcreate --snapshot --name Base-1-0 --addtag imgbased:base --setactivationskip y --activate y --ignoreactivationskip HostVG/root",
		"e2fsck -fy /dev/HostVG/Base-1-0",
		"tune2fs -O metadata_csum_seed /dev/HostVG/Base-1-0",
		"lvchange --permission r --setactivationskip y --activate n HostVG/Base-1-0",
		"lvcreate --snapshot --name Base-1-0+1 --addtag imgbased:layer --setactivationskip n --activate y HostVG/Base-1-0",
		"tune2fs -T now -U random /dev/HostVG/Base-1-0+1",
		"mount -t ext4 -o discard /dev/HostVG/Base-1-0+1 " + mnt,
		"umount " + mnt,
	})
}

// cmdlineBoot is a fakeBoot that knows a layer's kernel command line.
type cmdlineBoot struct{ fakeBoot }

func (cmdlineBoot) KernelCmdline(vg, lv, layer string) string {
	return "root=/dev/" + vg + "/" + lv + " img.bootid=" + layer + "\n"
}

// kernel-install inside a layer writes an entry from /etc/kernel/cmdline:
// copied from the running layer, it would boot that one.
func TestAddLayerWritesItsKernelCmdline(t *testing.T) {
	f := newFixture(t, "running", 254, 5)
	fstab := f.layerFstab(t, "Base-2-0+2", "")
	p := filepath.Join(filepath.Dir(fstab), "kernel/cmdline")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p, []byte("root=/dev/HostVG/Base-2-0+1 img.bootid=Base-2-0+1\n"), 0o644)
	f.h.Boot = &cmdlineBoot{}
	if _, err := f.h.AddLayer(context.Background(), "Base-2-0+1"); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(p); string(data) != "root=/dev/HostVG/Base-2-0+2 img.bootid=Base-2-0+2\n" {
		t.Errorf("/etc/kernel/cmdline of the new layer: %q", data)
	}
}
