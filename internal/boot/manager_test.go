package boot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imgbase/imgbase/internal/boot/bls"
	"github.com/imgbase/imgbase/internal/boot/efivar"
	"github.com/imgbase/imgbase/internal/boot/grubcfg"
	"github.com/imgbase/imgbase/internal/boot/grubenv"
	"github.com/imgbase/imgbase/internal/command/commandtest"
)

const testUUID = "0b6e4b6f-64d6-4d0b-9f3c-0c3f0d1c2a11"

// debianGrubCfg is the shape of the test image's hand-written grub.cfg.
const debianGrubCfg = `serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=3
insmod part_msdos
insmod ext2
load_env
set default="${saved_entry}"
`

type fixture struct {
	t      *testing.T
	boot   string
	srcDir string // a layer's /boot with kernels
	run    *commandtest.Recorder
	efi    efivar.Store
	m      *Manager
	clock  time.Time
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// newFixture makes a /boot tree with the given loader files.
func newFixture(t *testing.T, files map[string]string) *fixture {
	t.Helper()
	root := t.TempDir()
	f := &fixture{t: t, boot: filepath.Join(root, "boot"), srcDir: filepath.Join(root, "layerboot")}
	for p, data := range files {
		writeFile(t, filepath.Join(f.boot, p), data)
	}
	os.MkdirAll(f.boot, 0o755)
	writeFile(t, filepath.Join(f.srcDir, "vmlinuz-6.1.0-18-amd64"), "kernel 18")
	writeFile(t, filepath.Join(f.srcDir, "initrd.img-6.1.0-18-amd64"), "initrd 18")
	writeFile(t, filepath.Join(f.srcDir, "vmlinuz-6.1.0-9-amd64"), "kernel 9")
	writeFile(t, filepath.Join(f.srcDir, "initrd.img-6.1.0-9-amd64"), "initrd 9")
	writeFile(t, filepath.Join(root, "cmdline"), "BOOT_IMAGE=/vmlinuz root=/dev/mapper/HostVG-root ro rd.lvm.lv=HostVG/root console=ttyS0,115200n8 quiet\n")
	writeFile(t, filepath.Join(root, "boot_id"), "boot-1\n")
	f.run = (&commandtest.Recorder{}).On("findmnt", testUUID+" ext4\n", nil)
	f.clock = time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)
	f.m = New(f.boot, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	f.m.Run = f.run
	f.m.Cmdline = filepath.Join(root, "cmdline")
	f.m.BootIDPath = filepath.Join(root, "boot_id")
	f.efi = efivar.Store{Dir: filepath.Join(root, "efivars")}
	os.MkdirAll(f.efi.Dir, 0o755)
	f.m.EFI = f.efi
	f.m.Now = func() time.Time { f.clock = f.clock.Add(time.Minute); return f.clock }
	return f
}

// boot pretends the machine booted layer: the kernel command line names it.
func (f *fixture) booted(layer, bootID string) {
	root := filepath.Dir(f.boot)
	writeFile(f.t, filepath.Join(root, "cmdline"), "root=/dev/HostVG/"+layer+" img.bootid="+layer+" console=ttyS0,115200n8\n")
	writeFile(f.t, filepath.Join(root, "boot_id"), bootID+"\n")
}

func (f *fixture) layer(name string) Layer {
	return Layer{Name: name, NVR: name[:strings.LastIndexByte(name, '+')], VG: "HostVG", KernelSrcDir: f.srcDir}
}

func (f *fixture) add(name string, try bool) Entry {
	f.t.Helper()
	e, err := f.m.AddLayer(context.Background(), f.layer(name), try)
	if err != nil {
		f.t.Fatal(err)
	}
	return e
}

func (f *fixture) read(p string) string {
	f.t.Helper()
	data, err := os.ReadFile(filepath.Join(f.boot, p))
	if err != nil {
		f.t.Fatal(err)
	}
	return string(data)
}

func (f *fixture) env() *grubenv.Env {
	f.t.Helper()
	data, err := os.ReadFile(filepath.Join(f.boot, "grub", "grubenv"))
	if err != nil {
		f.t.Fatal(err)
	}
	if len(data) != grubenv.Size {
		f.t.Fatalf("grubenv is %d bytes", len(data))
	}
	e, err := grubenv.Parse(data)
	if err != nil {
		f.t.Fatal(err)
	}
	return e
}

func TestDetect(t *testing.T) {
	for _, c := range []struct {
		files map[string]string
		want  Loader
	}{
		{map[string]string{"grub/grub.cfg": debianGrubCfg}, GrubMenu},
		{map[string]string{"grub2/grub.cfg": "insmod blscfg\nblscfg\n"}, GrubBLS},
		{map[string]string{"loader/loader.conf": "timeout 3\n"}, SystemdBoot},
		{map[string]string{}, LoaderNone},
		// EL8 on UEFI: the real grub.cfg is on the ESP.
		{map[string]string{"efi/EFI/redhat/grub.cfg": "insmod blscfg\nblscfg\n"}, GrubBLS},
		// Debian on UEFI: the ESP's stub hands over to /boot/grub's.
		{map[string]string{"efi/EFI/debian/grub.cfg": debianStub, "grub/grub.cfg": debianGrubCfg}, GrubMenu},
		{map[string]string{"efi/EFI/debian/grub.cfg": debianStub}, LoaderNone},
	} {
		f := newFixture(t, c.files)
		if f.m.Loader != c.want {
			t.Errorf("%v: detected %v", c.files, f.m.Loader)
		}
		for p := range c.files {
			if strings.HasSuffix(p, "grub.cfg") && c.want != LoaderNone && !strings.Contains(c.files[p], "configfile") &&
				f.m.GrubDir != filepath.Join(f.boot, filepath.Dir(p)) {
				t.Errorf("%v: GRUB directory %s", c.files, f.m.GrubDir)
			}
		}
	}
}

const debianStub = "search.fs_uuid 0b5e6b4e-7cd3-4c3b-9d6a-3f1c2c6f0d11 root hd0,gpt2\nset prefix=($root)'/grub'\nconfigfile $prefix/grub.cfg\n"

// EL8 and older Fedora on UEFI link /boot/grub2/grubenv to the ESP's: GRUB
// reads the ESP's, so that is where a selection must land, the link kept.
func TestGrubenvSymlinkIsWrittenThrough(t *testing.T) {
	f := newFixture(t, map[string]string{"grub2/grub.cfg": "insmod blscfg\nblscfg\n", "efi/EFI/fedora/grubenv": ""})
	link := filepath.Join(f.boot, "grub2", "grubenv")
	if err := os.Symlink("../efi/EFI/fedora/grubenv", link); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := f.m.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	f.add("Base-1-0+1", false)
	if err := f.m.SetDefault(ctx, "Base-1-0+1"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("/boot/grub2/grubenv is no longer a symlink: %v %v", fi, err)
	}
	env, err := grubenv.Read(filepath.Join(f.boot, "efi/EFI/fedora/grubenv"))
	if err != nil || env.Get("saved_entry") != "Base-1-0_1" {
		t.Fatalf("the ESP's grubenv: %v %v", env, err)
	}
}

func TestAddLayerDebianGrub(t *testing.T) {
	f := newFixture(t, map[string]string{"grub/grub.cfg": debianGrubCfg})
	ctx := context.Background()
	if err := f.m.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	e := f.add("Base-1-0+1", false)
	if e.Path != filepath.Join(f.boot, "loader/entries/Base-1-0_1.conf") {
		t.Fatalf("entry path %s", e.Path)
	}
	want := `title Base-1-0 (Base-1-0+1)
version 6.1.0-18-amd64
linux /Base-1-0+1/vmlinuz-6.1.0-18-amd64
initrd /Base-1-0+1/initrd.img-6.1.0-18-amd64
options root=/dev/HostVG/Base-1-0+1 rd.lvm.lv=HostVG/Base-1-0+1 img.bootid=Base-1-0+1 ro console=ttyS0,115200n8 quiet
`
	if got := f.read("loader/entries/Base-1-0_1.conf"); got != want {
		t.Fatalf("entry:\n%s", got)
	}
	if f.read("Base-1-0+1/vmlinuz-6.1.0-18-amd64") != "kernel 18" || f.read("Base-1-0+1/initrd.img-6.1.0-18-amd64") != "initrd 18" {
		t.Fatal("kernel files not copied")
	}
	if _, err := os.Stat(filepath.Join(f.boot, "Base-1-0+1/vmlinuz-6.1.0-9-amd64")); err == nil {
		t.Fatal("the older kernel was copied too")
	}
	menu := f.read("grub/imgbase.cfg")
	for _, s := range []string{
		"search --no-floppy --fs-uuid --set=root " + testUUID,
		"menuentry 'Base-1-0 (Base-1-0+1)' --id Base-1-0+1 {",
		"  linux /Base-1-0+1/vmlinuz-6.1.0-18-amd64 root=/dev/HostVG/Base-1-0+1 rd.lvm.lv=HostVG/Base-1-0+1 img.bootid=Base-1-0+1 ro console=ttyS0,115200n8 quiet\n",
		"insmod ext2",
	} {
		if !strings.Contains(menu, s) {
			t.Errorf("menu lacks %q:\n%s", s, menu)
		}
	}
	cfg := f.read("grub/grub.cfg")
	if !strings.HasPrefix(cfg, debianGrubCfg) || !grubcfg.Wired([]byte(cfg)) {
		t.Fatalf("grub.cfg:\n%s", cfg)
	}
	// Setup again changes nothing.
	before := snapshot(t, f.boot)
	if err := f.m.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	if after := snapshot(t, f.boot); after != before {
		t.Fatalf("second Setup changed /boot:\n%s\n---\n%s", before, after)
	}
	if f.env().Get("saved_entry") != "" {
		t.Fatal("adding a layer changed the default")
	}
}

func TestSelection(t *testing.T) {
	f := newFixture(t, map[string]string{"grub/grub.cfg": debianGrubCfg})
	ctx := context.Background()
	if err := f.m.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"Base-1-0+1", "Base-1-0+2", "Base-2-0+1"} {
		f.add(l, false)
	}
	if err := f.m.SetDefault(ctx, "Base-2-0+1"); err != nil {
		t.Fatal(err)
	}
	if d, _ := f.m.Default(); d != "Base-2-0+1" || f.env().Get("saved_entry") != "Base-2-0+1" {
		t.Fatalf("default %q", d)
	}
	if err := f.m.SetNext(ctx, "Base-1-0+1"); err != nil {
		t.Fatal(err)
	}
	if f.env().Get("next_entry") != "Base-1-0+1" {
		t.Fatal("next_entry not set")
	}
	if err := f.m.SetDefault(ctx, "Base-9-0+1"); !errors.Is(err, ErrNoEntry) {
		t.Fatalf("SetDefault of a missing layer: %v", err)
	}
	// Every layer has booted once (MarkGood ran in each).
	for i, l := range []string{"Base-1-0+1", "Base-1-0+2", "Base-2-0+1"} {
		f.booted(l, fmt.Sprint("b", i))
		if _, err := f.m.MarkGood(ctx); err != nil {
			t.Fatal(err)
		}
	}
	res, err := f.m.Rollback(ctx, "")
	if err != nil || res.Layer != "Base-1-0+2" || len(res.Skipped) != 0 {
		t.Fatalf("rollback to %+v: %v", res, err)
	}
	if res, err = f.m.Rollback(ctx, ""); err != nil || res.Layer != "Base-1-0+1" {
		t.Fatalf("rollback to %+v: %v", res, err)
	}
	if _, err = f.m.Rollback(ctx, ""); err == nil {
		t.Fatal("rolled back past the oldest layer")
	}
	if _, err = f.m.Rollback(ctx, "Nope-1-0+1"); !errors.Is(err, ErrNoEntry) {
		t.Fatalf("rollback to a missing layer: %v", err)
	}
	if res, err = f.m.Rollback(ctx, "Base-2-0+1"); err != nil || res.Layer != "Base-2-0+1" || res.NeverBooted {
		t.Fatalf("rollback --to: %+v %v", res, err)
	}
	list, _ := f.m.List()
	var names []string
	for _, e := range list {
		names = append(names, e.Layer)
	}
	if strings.Join(names, " ") != "Base-1-0+1 Base-1-0+2 Base-2-0+1" {
		t.Fatalf("list order %v", names)
	}
	// The menu lists the newest first.
	menu := f.read("grub/imgbase.cfg")
	if !(strings.Index(menu, "--id Base-2-0+1") < strings.Index(menu, "--id Base-1-0+2") &&
		strings.Index(menu, "--id Base-1-0+2") < strings.Index(menu, "--id Base-1-0+1")) {
		t.Fatalf("menu order:\n%s", menu)
	}
}

func TestRemoveKeepsSharedFiles(t *testing.T) {
	f := newFixture(t, map[string]string{"grub/grub.cfg": debianGrubCfg})
	ctx := context.Background()
	f.add("Base-1-0+1", false)
	f.add("Base-1-0+2", false)
	// An entry (e.g. written by a recover) that boots +2 from +1's kernel.
	other := bls.Entry{Title: "x", Linux: "/Base-1-0+1/vmlinuz-6.1.0-18-amd64",
		Initrd: []string{"/Base-1-0+2/initrd.img-6.1.0-18-amd64"}, Options: "img.bootid=Base-1-0+3"}
	data, _ := other.Marshal()
	writeFile(t, filepath.Join(f.boot, "loader/entries/Base-1-0_3.conf"), string(data))
	if err := f.m.SetDefault(ctx, "Base-1-0+2"); err != nil {
		t.Fatal(err)
	}
	if err := f.m.RemoveLayer(ctx, "Base-1-0+2"); !errors.Is(err, ErrIsDefault) {
		t.Fatalf("removing the default: %v", err)
	}
	if err := f.m.RemoveLayer(ctx, "Base-1-0+1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(f.boot, "loader/entries/Base-1-0_1.conf")); !os.IsNotExist(err) {
		t.Fatal("entry not removed")
	}
	if f.read("Base-1-0+1/vmlinuz-6.1.0-18-amd64") != "kernel 18" {
		t.Fatal("removed a kernel another entry uses")
	}
	if _, err := os.Stat(filepath.Join(f.boot, "Base-1-0+1/initrd.img-6.1.0-18-amd64")); !os.IsNotExist(err) {
		t.Fatal("unused initrd kept")
	}
	if strings.Contains(f.read("grub/imgbase.cfg"), "--id Base-1-0+1 ") {
		t.Fatal("menu still has the removed layer")
	}
	if err := f.m.SetDefault(ctx, "Base-1-0+3"); err != nil {
		t.Fatal(err)
	}
	if err := f.m.RemoveLayer(ctx, "Base-1-0+2"); err != nil {
		t.Fatal(err)
	}
	if err := f.m.RemoveLayer(ctx, "Base-1-0+3"); !errors.Is(err, ErrIsDefault) {
		t.Fatal(err)
	}
	if f.read("Base-1-0+2/initrd.img-6.1.0-18-amd64") != "initrd 18" {
		t.Fatal("removed an initrd another entry uses")
	}
	if _, err := os.Stat(filepath.Join(f.boot, "Base-1-0+2/vmlinuz-6.1.0-18-amd64")); !os.IsNotExist(err) {
		t.Fatal("unused kernel kept")
	}
	f.add("Base-1-0+4", false)
	if err := f.m.RemoveLayer(ctx, "Base-1-0+4"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(f.boot, "Base-1-0+4")); !os.IsNotExist(err) {
		t.Fatal("empty layer directory kept")
	}
}

// snapshot lists every file under dir with its content.
func snapshot(t *testing.T, dir string) string {
	var b strings.Builder
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		b.WriteString(rel)
		if !d.IsDir() {
			data, _ := os.ReadFile(p)
			b.WriteString(" = " + string(data))
		}
		b.WriteString("\n")
		return nil
	})
	return b.String()
}

func TestDryChangesNothing(t *testing.T) {
	f := newFixture(t, map[string]string{"grub/grub.cfg": debianGrubCfg})
	ctx := context.Background()
	f.m.Setup(ctx)
	f.add("Base-1-0+1", false)
	f.m.SetDefault(ctx, "Base-1-0+1")
	before := snapshot(t, f.boot)
	var out bytes.Buffer
	f.m.Dry = &out
	f.add("Base-1-0+2", true)
	for _, err := range []error{
		f.m.SetNext(ctx, "Base-1-0+1"),
		f.m.RemoveLayer(ctx, "Base-1-0+2"),
	} {
		if err != nil && !errors.Is(err, ErrNoEntry) {
			t.Fatal(err)
		}
	}
	if after := snapshot(t, f.boot); after != before {
		t.Fatalf("dry run changed /boot")
	}
	for _, s := range []string{
		"copy " + f.srcDir + "/vmlinuz-6.1.0-18-amd64 " + f.boot + "/Base-1-0+2/vmlinuz-6.1.0-18-amd64",
		"write " + f.boot + "/loader/entries/Base-1-0_2.conf:",
		"  | options root=/dev/HostVG/Base-1-0+2",
		"write " + f.boot + "/grub/imgbase.cfg:",
		"  | try_entry=Base-1-0+2",
		"  | boot_status=try\n  | (939 bytes of '#')",
		"img.bootid=Base-1-0+2 ro console=ttyS0,115200n8 quiet panic=10\n",
	} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("dry output lacks %q:\n%s", s, out.String())
		}
	}
}

func TestGrubBLSUsesFileIDs(t *testing.T) {
	f := newFixture(t, map[string]string{"grub2/grub.cfg": "set default=\"${saved_entry}\"\ninsmod blscfg\nblscfg\n"})
	ctx := context.Background()
	if err := f.m.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	f.add("Base-1-0+1", false)
	if err := f.m.SetDefault(ctx, "Base-1-0+1"); err != nil {
		t.Fatal(err)
	}
	env, _ := grubenv.Read(filepath.Join(f.boot, "grub2/grubenv"))
	if env.Get("saved_entry") != "Base-1-0_1" {
		t.Fatalf("saved_entry %q", env.Get("saved_entry"))
	}
	if d, _ := f.m.Default(); d != "Base-1-0+1" {
		t.Fatalf("default %q", d)
	}
	menu := f.read("grub2/imgbase.cfg")
	if strings.Contains(menu, "menuentry") || !strings.Contains(menu, "try_entry") {
		t.Fatalf("blscfg fragment:\n%s", menu)
	}
	if !grubcfg.Wired([]byte(f.read("grub2/grub.cfg"))) {
		t.Fatal("not wired")
	}
}

func TestSystemdBoot(t *testing.T) {
	f := newFixture(t, map[string]string{"loader/loader.conf": "timeout 3\ndefault old.conf\neditor no\n"})
	ctx := context.Background()
	f.booted("Base-1-0+1", "boot-1")
	f.add("Base-1-0+1", false)
	if err := f.m.SetDefault(ctx, "Base-1-0+1"); err != nil {
		t.Fatal(err)
	}
	if got := f.read("loader/loader.conf"); got != "timeout 3\ndefault Base-1-0_1.conf\neditor no\n" {
		t.Fatalf("loader.conf:\n%s", got)
	}
	f.add("Base-2-0+1", true)
	if got, err := f.efi.Get(OneShotVar); err != nil || got != "Base-2-0_1.conf" {
		t.Fatalf("one-shot: %q %v", got, err)
	}
	if got := f.run.Mutations(); len(got) != 0 {
		t.Fatalf("commands: %q, want none (no bootctl: a layer's image need not have it)", got)
	}
	// Same boot: the trial is still ahead.
	if ev, err := f.m.MarkGood(ctx); err != nil || ev.Kind != "" {
		t.Fatalf("mark on the arming boot: %+v %v", ev, err)
	}
	f.booted("Base-2-0+1", "boot-2")
	if ev, err := f.m.MarkGood(ctx); err != nil || ev.Kind != EventGood {
		t.Fatalf("mark: %+v %v", ev, err)
	}
	if d, _ := f.m.Default(); d != "Base-2-0+1" {
		t.Fatalf("default %q", d)
	}
	// A failed trial: the one-shot was used, the machine came back on the default.
	f.add("Base-3-0+1", true)
	f.booted("Base-2-0+1", "boot-4")
	if ev, err := f.m.MarkGood(ctx); err != nil || ev.Kind != EventFallback || ev.Layer != "Base-3-0+1" {
		t.Fatalf("mark: %+v %v", ev, err)
	}
	if d, _ := f.m.Default(); d != "Base-2-0+1" {
		t.Fatalf("default %q", d)
	}
	// A layer removed while its one-shot is pending takes the one-shot
	// with it; another layer's stays.
	f.add("Base-3-0+2", true)
	if err := f.m.RemoveLayer(ctx, "Base-3-0+1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.efi.Get(OneShotVar); got != "Base-3-0_2.conf" {
		t.Fatalf("one-shot after removing another layer: %q", got)
	}
	if err := f.m.RemoveLayer(ctx, "Base-3-0+2"); err != nil {
		t.Fatal(err)
	}
	if got, err := f.efi.Get(OneShotVar); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("one-shot of a removed layer left: %q %v", got, err)
	}
}

func TestTryGoodAndFallbackGrub(t *testing.T) {
	f := newFixture(t, map[string]string{"grub/grub.cfg": debianGrubCfg})
	ctx := context.Background()
	f.m.Setup(ctx)
	f.add("Base-1-0+1", false)
	f.m.SetDefault(ctx, "Base-1-0+1")
	f.booted("Base-1-0+1", "b1")

	f.add("Base-2-0+1", true)
	if ev, _ := f.m.MarkGood(ctx); ev.Kind != "" {
		t.Fatalf("marked before the trial boot: %+v", ev)
	}
	entry := grubBoot(t, f) // try -> trying, boots the new layer
	if entry != "Base-2-0+1" {
		t.Fatalf("trial booted %q", entry)
	}
	f.booted(entry, "b2")
	ev, err := f.m.MarkGood(ctx)
	if err != nil || ev.Kind != EventGood {
		t.Fatalf("%+v %v", ev, err)
	}
	if d, _ := f.m.Default(); d != "Base-2-0+1" {
		t.Fatalf("default %q", d)
	}

	f.add("Base-3-0+1", true)
	if entry = grubBoot(t, f); entry != "Base-3-0+1" {
		t.Fatalf("trial booted %q", entry)
	}
	// It panics: no MarkGood. The next boot falls back by itself.
	if entry = grubBoot(t, f); entry != "Base-2-0+1" {
		t.Fatalf("fallback booted %q", entry)
	}
	f.booted(entry, "b4")
	ev, err = f.m.MarkGood(ctx)
	if err != nil || ev.Kind != EventFallback || ev.Layer != "Base-3-0+1" {
		t.Fatalf("%+v %v", ev, err)
	}
	st, err := f.m.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st.Default != "Base-2-0+1" || st.Try != "" || st.Running != "Base-2-0+1" {
		t.Fatalf("status %+v", st)
	}
	var kinds []string
	for _, e := range st.Events {
		kinds = append(kinds, e.Kind+":"+e.Layer)
	}
	if got := strings.Join(kinds, " "); got != "set-default:Base-1-0+1 try:Base-2-0+1 good:Base-2-0+1 try:Base-3-0+1 fallback:Base-3-0+1" {
		t.Fatalf("events %s", got)
	}
	if !strings.Contains(st.String(), "fallback    Base-3-0+1 (running Base-2-0+1): trial boot never reached the success mark; fell back to Base-2-0+1") {
		t.Fatalf("status text:\n%s", st)
	}
	// And the default boots from now on.
	if entry = grubBoot(t, f); entry != "Base-2-0+1" {
		t.Fatalf("booted %q", entry)
	}
}

// grubBoot runs the GRUB model on the fixture's grubenv, as GRUB would at
// power-on, and returns the entry it boots.
func grubBoot(t *testing.T, f *fixture) string {
	t.Helper()
	entry, saved := grubcfg.Select(f.env(), false)
	if saved != nil {
		if err := f.m.writeEnv(saved); err != nil {
			t.Fatal(err)
		}
	}
	return entry
}

func TestCheckAndRecover(t *testing.T) {
	f := newFixture(t, map[string]string{"grub/grub.cfg": debianGrubCfg})
	ctx := context.Background()
	f.m.Setup(ctx)
	f.add("Base-1-0+1", false)
	f.add("Base-1-0+2", false)
	f.add("Gone-1-0+1", false)
	f.m.SetDefault(ctx, "Gone-1-0+1")
	os.Remove(filepath.Join(f.boot, "Base-1-0+2/initrd.img-6.1.0-18-amd64"))
	layers := []Layer{f.layer("Base-1-0+1"), f.layer("Base-1-0+2"), f.layer("Base-2-0+1")}
	ps, err := f.m.Check(ctx, layers)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range ps {
		got = append(got, string(p.Kind)+" "+p.Layer)
	}
	want := "no-entry Base-2-0+1|missing-file Base-1-0+2|no-layer Gone-1-0+1"
	if strings.Join(got, "|") != want {
		t.Fatalf("problems:\n%s\nwant\n%s", strings.Join(got, "|"), want)
	}
	left, err := f.m.Recover(ctx, layers)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Fatalf("left after recover: %v", left)
	}
	if d, _ := f.m.Default(); d != "Base-2-0+1" {
		t.Fatalf("default after recover %q", d)
	}
	// A damaged menu and grubenv are found and repaired too.
	writeFile(t, filepath.Join(f.boot, "grub/imgbase.cfg"), "junk")
	writeFile(t, filepath.Join(f.boot, "grub/grubenv"), "junk")
	ps, _ = f.m.Check(ctx, layers)
	got = nil
	for _, p := range ps {
		got = append(got, string(p.Kind))
	}
	if strings.Join(got, " ") != "bad-grubenv stale-menu bad-default" {
		t.Fatalf("problems %v", got)
	}
	if left, err = f.m.Recover(ctx, layers); err != nil || len(left) != 0 {
		t.Fatalf("recover: %v %v", left, err)
	}
}

func TestReAddAfterKernelUpgrade(t *testing.T) {
	f := newFixture(t, map[string]string{"grub/grub.cfg": debianGrubCfg})
	f.add("Base-1-0+1", false)
	writeFile(t, filepath.Join(f.srcDir, "vmlinuz-6.1.0-20-amd64"), "kernel 20")
	writeFile(t, filepath.Join(f.srcDir, "initrd.img-6.1.0-20-amd64"), "initrd 20")
	e := f.add("Base-1-0+1", false)
	if e.Version != "6.1.0-20-amd64" || f.read("Base-1-0+1/vmlinuz-6.1.0-20-amd64") != "kernel 20" {
		t.Fatalf("re-add: %+v", e)
	}
	for _, old := range []string{"vmlinuz-6.1.0-18-amd64", "initrd.img-6.1.0-18-amd64"} {
		if _, err := os.Stat(filepath.Join(f.boot, "Base-1-0+1", old)); !os.IsNotExist(err) {
			t.Errorf("old %s kept", old)
		}
	}
	if !strings.Contains(f.read("grub/imgbase.cfg"), "/Base-1-0+1/vmlinuz-6.1.0-20-amd64") {
		t.Fatal("menu not updated")
	}
}

// Rollback goes back to a layer that booted, never to one that was only
// added; --to may name any layer and says when it never booted.
func TestRollbackGoesToALayerThatBooted(t *testing.T) {
	f := newFixture(t, map[string]string{"grub/grub.cfg": debianGrubCfg})
	ctx := context.Background()
	f.m.Setup(ctx)
	f.add("Base-1-0+1", false)
	f.m.SetDefault(ctx, "Base-1-0+1")
	f.booted("Base-1-0+1", "b1")
	if _, err := f.m.MarkGood(ctx); err != nil {
		t.Fatal(err)
	}
	// Two layers added, the newer one's trial boots good; the middle one
	// never booted.
	f.add("Base-1-0+2", false)
	f.add("Base-1-0+3", true)
	if e := grubBoot(t, f); e != "Base-1-0+3" {
		t.Fatalf("trial booted %q", e)
	}
	f.booted("Base-1-0+3", "b2")
	if ev, err := f.m.MarkGood(ctx); err != nil || ev.Kind != EventGood {
		t.Fatalf("%+v %v", ev, err)
	}
	if ok, _ := f.m.BootedGood("Base-1-0+2"); ok {
		t.Fatal("a layer that never booted counts as booted")
	}
	res, err := f.m.Rollback(ctx, "")
	if err != nil || res.Layer != "Base-1-0+1" || strings.Join(res.Skipped, ",") != "Base-1-0+2" {
		t.Fatalf("rollback: %+v %v", res, err)
	}
	if !strings.Contains(res.Reason, "skipped Base-1-0+2: never booted") {
		t.Fatalf("reason %q", res.Reason)
	}
	if d, _ := f.m.Default(); d != "Base-1-0+1" {
		t.Fatalf("default %q", d)
	}
	// --to a layer that never booted: done, and said.
	if res, err = f.m.Rollback(ctx, "Base-1-0+2"); err != nil || res.Layer != "Base-1-0+2" || !res.NeverBooted {
		t.Fatalf("rollback --to: %+v %v", res, err)
	}
	if res, err = f.m.Rollback(ctx, "Base-1-0+3"); err != nil || res.NeverBooted {
		t.Fatalf("rollback --to a layer that booted: %+v %v", res, err)
	}
}

// With no earlier layer that ever booted, rollback refuses and names the
// way out instead of choosing a layer that may never have worked.
func TestRollbackRefusesWhenNoEarlierLayerBooted(t *testing.T) {
	f := newFixture(t, map[string]string{"grub/grub.cfg": debianGrubCfg})
	ctx := context.Background()
	f.m.Setup(ctx)
	f.add("Base-1-0+1", false)
	f.add("Base-1-0+2", false)
	f.m.SetDefault(ctx, "Base-1-0+2")
	f.booted("Base-1-0+2", "b1")
	f.m.MarkGood(ctx)
	_, err := f.m.Rollback(ctx, "")
	if err == nil || !strings.Contains(err.Error(), "Base-1-0+1 never did") || !strings.Contains(err.Error(), "--to") {
		t.Fatalf("rollback: %v", err)
	}
	if d, _ := f.m.Default(); d != "Base-1-0+2" {
		t.Fatalf("a refused rollback changed the default to %q", d)
	}
}

// Once a trial succeeds, the layer's entry and menu lose the panic=10
// imgbase gave the trial, and layers added from that boot do not carry it;
// an admin's own panic= is never touched.
func TestGoodTrialEntryIsPlain(t *testing.T) {
	f := newFixture(t, map[string]string{"grub/grub.cfg": debianGrubCfg})
	ctx := context.Background()
	f.m.Setup(ctx)
	f.add("Base-1-0+1", false)
	f.m.SetDefault(ctx, "Base-1-0+1")
	f.booted("Base-1-0+1", "b1")
	e := f.add("Base-2-0+1", true)
	if !strings.Contains(e.Options, PanicReboot) || !strings.Contains(f.read("grub/imgbase.cfg"), PanicReboot) {
		t.Fatalf("the trial entry has no %s: %s", PanicReboot, e.Options)
	}
	grubBoot(t, f)
	// The trial boot runs with the trial's command line.
	writeFile(t, filepath.Join(filepath.Dir(f.boot), "cmdline"), "root=/dev/HostVG/Base-2-0+1 img.bootid=Base-2-0+1 console=ttyS0,115200n8 "+PanicReboot+"\n")
	if ev, err := f.m.MarkGood(ctx); err != nil || ev.Kind != EventGood {
		t.Fatalf("%+v %v", ev, err)
	}
	if got := f.read("loader/entries/Base-2-0_1.conf"); strings.Contains(got, "panic=") {
		t.Fatalf("the good layer's entry still has panic=:\n%s", got)
	}
	if menu := f.read("grub/imgbase.cfg"); strings.Contains(menu, "panic=") {
		t.Fatalf("the menu still has panic=:\n%s", menu)
	}
	if e := f.add("Base-2-0+2", false); strings.Contains(e.Options, "panic=") {
		t.Fatalf("a layer added from the good trial boot carries panic=: %s", e.Options)
	}

	// An admin's panic=30 on the running command line: the trial keeps
	// it, and so does the good entry.
	writeFile(t, filepath.Join(filepath.Dir(f.boot), "cmdline"), "root=/dev/HostVG/Base-2-0+1 img.bootid=Base-2-0+1 panic=30\n")
	f.add("Base-3-0+1", true)
	grubBoot(t, f)
	writeFile(t, filepath.Join(filepath.Dir(f.boot), "cmdline"), "root=/dev/HostVG/Base-3-0+1 img.bootid=Base-3-0+1 panic=30\n")
	if ev, err := f.m.MarkGood(ctx); err != nil || ev.Kind != EventGood {
		t.Fatalf("%+v %v", ev, err)
	}
	if got := f.read("loader/entries/Base-3-0_1.conf"); !strings.Contains(got, "panic=30") {
		t.Fatalf("the admin's panic=30 is gone:\n%s", got)
	}
}

// A layer whose trial was overtaken by a newer layer's keeps its
// PanicReboot only until it boots good some other way (boot --next).
func TestOvertakenTrialLosesPanicAtItsFirstGoodBoot(t *testing.T) {
	f := newFixture(t, map[string]string{"grub/grub.cfg": debianGrubCfg})
	ctx := context.Background()
	f.m.Setup(ctx)
	f.add("Base-1-0+1", false)
	f.m.SetDefault(ctx, "Base-1-0+1")
	f.booted("Base-1-0+1", "b1")
	f.add("Base-1-0+2", true)
	f.add("Base-1-0+3", true) // +2's trial is overtaken
	grubBoot(t, f)
	writeFile(t, filepath.Join(filepath.Dir(f.boot), "cmdline"), "root=/dev/HostVG/Base-1-0+3 img.bootid=Base-1-0+3 "+PanicReboot+"\n")
	if ev, err := f.m.MarkGood(ctx); err != nil || ev.Kind != EventGood {
		t.Fatalf("%+v %v", ev, err)
	}
	if got := f.read("loader/entries/Base-1-0_2.conf"); !strings.Contains(got, PanicReboot) {
		t.Fatalf("+2 never booted, yet its entry lost %s:\n%s", PanicReboot, got)
	}
	// +2 booted once through boot --next, and reached the success mark.
	writeFile(t, filepath.Join(filepath.Dir(f.boot), "cmdline"), "root=/dev/HostVG/Base-1-0+2 img.bootid=Base-1-0+2 "+PanicReboot+"\n")
	if _, err := f.m.MarkGood(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.read("loader/entries/Base-1-0_2.conf"); strings.Contains(got, "panic=") {
		t.Fatalf("+2 booted good, yet its entry keeps panic=:\n%s", got)
	}
	if menu := f.read("grub/imgbase.cfg"); strings.Count(menu, PanicReboot) != 0 {
		t.Fatalf("the menu still has %s:\n%s", PanicReboot, menu)
	}
}
