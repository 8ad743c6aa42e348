package boot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// syncFixture: two layers of one base booting 6.1.0-18 from their own
// copies (hard-linked, as Disk links identical kernels), GRUB menu.
func syncFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t, map[string]string{"grub/grub.cfg": debianGrubCfg})
	if err := f.m.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.add("Base-1-0+1", false)
	f.add("Base-1-0+2", false)
	// The shared /boot's top level, where Debian's hooks write.
	writeFile(t, filepath.Join(f.boot, "vmlinuz-6.1.0-18-amd64"), "kernel 18")
	writeFile(t, filepath.Join(f.boot, "initrd.img-6.1.0-18-amd64"), "initrd 18")
	f.booted("Base-1-0+2", "b1")
	return f
}

func installedAll(versions ...string) func(string) bool {
	return func(v string) bool {
		for _, w := range versions {
			if v == w {
				return true
			}
		}
		return false
	}
}

func (f *fixture) sync(c KernelChange) KernelSync {
	f.t.Helper()
	if c.Layer == "" {
		c.Layer = "Base-1-0+2"
	}
	c.SrcDir = f.boot
	res, err := f.m.SyncKernel(context.Background(), c)
	if err != nil {
		f.t.Fatal(err)
	}
	return res
}

// snapshot returns every file of layer's directory and its entry.
func (f *fixture) snapshot(layer string) map[string]string {
	f.t.Helper()
	out := map[string]string{}
	ents, _ := os.ReadDir(filepath.Join(f.boot, layer))
	for _, e := range ents {
		out[e.Name()] = f.read(filepath.Join(layer, e.Name()))
	}
	out["entry"] = f.read("loader/entries/" + strings.ReplaceAll(layer, "+", "_") + ".conf")
	return out
}

func sameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestSyncKernelRebuiltInitramfs(t *testing.T) {
	f := syncFixture(t)
	other := f.snapshot("Base-1-0+1")
	entry := f.read("loader/entries/Base-1-0_2.conf")
	writeFile(t, filepath.Join(f.boot, "initrd.img-6.1.0-18-amd64"), "initrd 18 with marker")

	res := f.sync(KernelChange{Version: "6.1.0-18-amd64", Installed: installedAll("6.1.0-18-amd64")})
	if !res.Changed || res.From != "6.1.0-18-amd64" || res.To != "6.1.0-18-amd64" {
		t.Fatalf("result %+v", res)
	}
	if got := f.read("Base-1-0+2/initrd.img-6.1.0-18-amd64"); got != "initrd 18 with marker" {
		t.Fatalf("the layer's initramfs: %q", got)
	}
	if got := f.read("loader/entries/Base-1-0_2.conf"); got != entry {
		t.Errorf("the entry changed though the file names did not:\n%s", got)
	}
	// The other layer's copy was a hard link to this one's: replaced by
	// rename, it must keep the old content.
	if got := f.snapshot("Base-1-0+1"); !sameMap(got, other) {
		t.Errorf("the other layer changed:\n%v\nwas\n%v", got, other)
	}

	// Again: nothing to do.
	if res := f.sync(KernelChange{Version: "6.1.0-18-amd64", Installed: installedAll("6.1.0-18-amd64")}); res.Changed {
		t.Errorf("a second sync changed something: %+v", res)
	}
}

func TestSyncKernelNewKernel(t *testing.T) {
	f := syncFixture(t)
	other := f.snapshot("Base-1-0+1")
	writeFile(t, filepath.Join(f.boot, "vmlinuz-6.1.0-20-amd64"), "kernel 20")
	writeFile(t, filepath.Join(f.boot, "initrd.img-6.1.0-20-amd64"), "initrd 20")
	installed := installedAll("6.1.0-18-amd64", "6.1.0-20-amd64")

	res := f.sync(KernelChange{Version: "6.1.0-20-amd64", Installed: installed})
	if !res.Changed || res.From != "6.1.0-18-amd64" || res.To != "6.1.0-20-amd64" {
		t.Fatalf("result %+v", res)
	}
	e := f.read("loader/entries/Base-1-0_2.conf")
	for _, want := range []string{"version 6.1.0-20-amd64\n", "linux /Base-1-0+2/vmlinuz-6.1.0-20-amd64\n", "initrd /Base-1-0+2/initrd.img-6.1.0-20-amd64\n", "img.bootid=Base-1-0+2 "} {
		if !strings.Contains(e, want) {
			t.Errorf("entry lacks %q:\n%s", want, e)
		}
	}
	if f.read("Base-1-0+2/vmlinuz-6.1.0-20-amd64") != "kernel 20" {
		t.Error("the new kernel was not copied")
	}
	if _, err := os.Stat(filepath.Join(f.boot, "Base-1-0+2/vmlinuz-6.1.0-18-amd64")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the old kernel no entry boots is still there: %v", err)
	}
	menu := f.read("grub/imgbase.cfg")
	if !strings.Contains(menu, "linux /Base-1-0+2/vmlinuz-6.1.0-20-amd64") || !strings.Contains(menu, "linux /Base-1-0+1/vmlinuz-6.1.0-18-amd64") {
		t.Errorf("the GRUB menu does not follow:\n%s", menu)
	}
	if got := f.snapshot("Base-1-0+1"); !sameMap(got, other) {
		t.Errorf("the other layer changed:\n%v\nwas\n%v", got, other)
	}

	// An older kernel installed afterwards changes nothing.
	writeFile(t, filepath.Join(f.boot, "vmlinuz-6.1.0-19-amd64"), "kernel 19")
	writeFile(t, filepath.Join(f.boot, "initrd.img-6.1.0-19-amd64"), "initrd 19")
	res = f.sync(KernelChange{Version: "6.1.0-19-amd64", Installed: installedAll("6.1.0-18-amd64", "6.1.0-19-amd64", "6.1.0-20-amd64")})
	if res.Changed || res.To != "6.1.0-20-amd64" {
		t.Errorf("an older kernel: %+v", res)
	}
}

// A version the hook names but the layer has no modules of was installed
// by another layer: its files are not this layer's.
func TestSyncKernelOtherLayersKernel(t *testing.T) {
	f := syncFixture(t)
	before := f.snapshot("Base-1-0+2")
	writeFile(t, filepath.Join(f.boot, "vmlinuz-6.1.0-20-amd64"), "kernel 20")
	writeFile(t, filepath.Join(f.boot, "initrd.img-6.1.0-20-amd64"), "initrd 20")
	res := f.sync(KernelChange{Version: "6.1.0-20-amd64", Installed: installedAll("6.1.0-18-amd64")})
	if res.Changed || !strings.Contains(res.Reason, "no modules") {
		t.Errorf("result %+v", res)
	}
	if got := f.snapshot("Base-1-0+2"); !sameMap(got, before) {
		t.Errorf("the layer changed: %v", got)
	}
	// By hand, without a version: the newest the layer has.
	res = f.sync(KernelChange{Installed: installedAll("6.1.0-18-amd64")})
	if res.Changed || res.To != "6.1.0-18-amd64" {
		t.Errorf("sync by hand: %+v", res)
	}
}

// update-initramfs in a layer made from an image: the vmlinuz is only in
// the layer's hidden /boot, so the entry keeps its own copy.
func TestSyncKernelInitramfsOnly(t *testing.T) {
	f := syncFixture(t)
	os.Remove(filepath.Join(f.boot, "vmlinuz-6.1.0-18-amd64"))
	writeFile(t, filepath.Join(f.boot, "initrd.img-6.1.0-18-amd64"), "initrd rebuilt")
	res := f.sync(KernelChange{Version: "6.1.0-18-amd64", Installed: installedAll("6.1.0-18-amd64")})
	if !res.Changed || f.read("Base-1-0+2/initrd.img-6.1.0-18-amd64") != "initrd rebuilt" || f.read("Base-1-0+2/vmlinuz-6.1.0-18-amd64") != "kernel 18" {
		t.Fatalf("result %+v", res)
	}
}

func TestSyncKernelRemoved(t *testing.T) {
	f := syncFixture(t)
	writeFile(t, filepath.Join(f.boot, "vmlinuz-6.1.0-20-amd64"), "kernel 20")
	writeFile(t, filepath.Join(f.boot, "initrd.img-6.1.0-20-amd64"), "initrd 20")
	f.sync(KernelChange{Version: "6.1.0-20-amd64", Installed: installedAll("6.1.0-18-amd64", "6.1.0-20-amd64")})

	// Removing a kernel the entry does not boot changes nothing.
	if res := f.sync(KernelChange{Version: "6.1.0-18-amd64", Removed: true, Installed: installedAll("6.1.0-20-amd64")}); res.Changed || res.To != "6.1.0-20-amd64" {
		t.Errorf("removing an unused kernel: %+v", res)
	}
	// Removing the one it boots: back to the newest left.
	os.Remove(filepath.Join(f.boot, "vmlinuz-6.1.0-20-amd64"))
	os.Remove(filepath.Join(f.boot, "initrd.img-6.1.0-20-amd64"))
	res := f.sync(KernelChange{Version: "6.1.0-20-amd64", Removed: true, Installed: installedAll("6.1.0-18-amd64")})
	if !res.Changed || res.To != "6.1.0-18-amd64" {
		t.Fatalf("removing the booted kernel: %+v", res)
	}
	if e := f.read("loader/entries/Base-1-0_2.conf"); !strings.Contains(e, "linux /Base-1-0+2/vmlinuz-6.1.0-18-amd64\n") {
		t.Errorf("entry:\n%s", e)
	}
	// The last kernel removed: the entry keeps its copy.
	os.Remove(filepath.Join(f.boot, "vmlinuz-6.1.0-18-amd64"))
	res = f.sync(KernelChange{Version: "6.1.0-18-amd64", Removed: true, Installed: installedAll()})
	if res.Changed || f.read("Base-1-0+2/vmlinuz-6.1.0-18-amd64") != "kernel 18" {
		t.Errorf("removing the last kernel: %+v", res)
	}
}

func TestSyncKernelNoEntry(t *testing.T) {
	f := syncFixture(t)
	_, err := f.m.SyncKernel(context.Background(), KernelChange{Layer: "Base-1-0+9", Version: "6.1.0-18-amd64", SrcDir: f.boot})
	if !errors.Is(err, ErrNoEntry) {
		t.Fatalf("err %v", err)
	}
}

func TestKernelCmdlineNamesTheLayer(t *testing.T) {
	f := newFixture(t, map[string]string{"grub/grub.cfg": debianGrubCfg})
	got := f.m.KernelCmdline("HostVG", "Base-1-0+2", "Base-1-0+2")
	want := "root=/dev/HostVG/Base-1-0+2 rd.lvm.lv=HostVG/Base-1-0+2 img.bootid=Base-1-0+2 ro console=ttyS0,115200n8 quiet\n"
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	// Made while a trial runs: the trial's panic=10 is not the layer's.
	f.add("Base-1-0+1", true)
	writeFile(t, f.m.Cmdline, "root=/dev/HostVG/Base-1-0+1 img.bootid=Base-1-0+1 console=ttyS0,115200n8 panic=10\n")
	got = f.m.KernelCmdline("HostVG", "Base-1-0+2", "Base-1-0+2")
	if want := "root=/dev/HostVG/Base-1-0+2 rd.lvm.lv=HostVG/Base-1-0+2 img.bootid=Base-1-0+2 console=ttyS0,115200n8\n"; got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
