//go:build vm

package vm

import (
	"strings"
	"testing"
)

// The seeds' walk-throughs, verbatim, each on a fresh copy of the host
// image, checked with lvm2's own tools.

const (
	nvr1   = "imgbase-test-1.0-1" // /usr/share/imgbase/build/meta/nvr of the host and v1
	nvr2   = "imgbase-test-2.0-1"
	v2img  = PayloadDir + "/v2.img"
	v2sqfs = PayloadDir + "/v2.squashfs"
)

// checkFreshHost checks the host image as installed, before imgbase
// touched it: it booted its root LV of the thin pool, /boot is ext4 on the
// first partition, the payload disk is there and imgbase runs.
func checkFreshHost(t *testing.T, g *Guest) {
	t.Helper()
	b := g.Booted()
	if b.LV != vg+"/root" {
		t.Errorf("booted %q (source %s), want %s/root", b.LV, b.Source, vg)
	}
	if !strings.Contains(b.Cmdline, "root=/dev/HostVG/root") {
		t.Errorf("cmdline %q lacks root=/dev/HostVG/root", b.Cmdline)
	}
	lvs := g.LVs()
	if p := lvs["pool00"]; p.Segtype != "thin-pool" {
		t.Errorf("pool00 is %q, want thin-pool", p.Segtype)
	}
	if r := lvs["root"]; r.Segtype != "thin" || r.Pool != "pool00" || len(r.Tags()) != 0 {
		t.Errorf("root is %s in %q tagged %q, want an untagged thin LV in pool00", r.Segtype, r.Pool, r.TagList)
	}
	if got := g.MustRun("findmnt", "-no", "FSTYPE,SOURCE", "/boot"); strings.Fields(got)[0] != "ext4" ||
		!strings.HasPrefix(strings.Fields(got)[1], "/dev/vda1") {
		t.Errorf("/boot is %q, want ext4 on /dev/vda1", got)
	}
	if got := strings.TrimSpace(g.MustRun("cat", "/usr/share/imgbase/build/meta/nvr")); got != nvr1 {
		t.Errorf("nvr %q, want %s", got, nvr1)
	}
	g.MustShell("test -s " + v2img + " && test -s " + v2sqfs + " && test -s " + PayloadDir + "/v1.img")
	g.MustRun(ImgbasePath, "--help")
}

// README seed: `imgbase layout --init Base-1-0 --from /` and what follows,
// on the host as installed.
func TestSeedInitFrom(t *testing.T) {
	Parallel(t)
	g := Boot(t)
	checkFreshHost(t, g)
	rootUUID := strings.TrimSpace(g.MustRun("blkid", "-s", "UUID", "-o", "value", "/dev/HostVG/root"))

	g.MustRun("imgbase", "layout", "--init", "Base-1-0", "--from", "/")
	lvs := g.LVs()
	checkInitTags(t, g, lvs)
	checkBase(t, lvs, "Base-1-0")
	first := layersOf(lvs, "Base-1-0")
	if len(first) != 1 {
		t.Fatalf("layout --init made layers %v of Base-1-0, want one; LVs: %s", first, names(lvs))
	}
	checkLayer(t, lvs, first[0], "Base-1-0")

	out := g.MustRun("imgbase", "layout")
	t.Logf("imgbase layout:\n%s", out)
	if !strings.Contains(out, "Base-1-0") || !strings.Contains(out, first[0]) {
		t.Errorf("imgbase layout does not show Base-1-0 and %s:\n%s", first[0], out)
	}

	before := g.LVs()
	g.MustRun("imgbase", "base", "--add", "Base-2-0", "--size", "1G")
	lvs = g.LVs()
	checkBase(t, lvs, "Base-2-0")
	if got := lvs["Base-2-0"].Size; got != "1073741824B" {
		t.Errorf("Base-2-0 size %s, want 1G", got)
	}
	if a := added(before, lvs); len(a) != 1 {
		t.Errorf("base --add made %v, want only Base-2-0", a)
	}

	if got := strings.TrimSpace(g.MustRun("imgbase", "base", "--latest")); got != "Base-2-0" {
		t.Errorf("base --latest = %q, want Base-2-0", got)
	}

	before = g.LVs()
	g.MustRun("imgbase", "layer", "--add", "Base-1-0")
	lvs = g.LVs()
	a := added(before, lvs)
	if len(a) != 1 {
		t.Fatalf("layer --add Base-1-0 made %v, want one layer", a)
	}
	checkLayer(t, lvs, a[0], "Base-1-0")

	before = lvs
	r, err := g.Run(tenMinutes, "imgbase", "--debug", "layer", "--add")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("imgbase --debug layer --add: exit %d\n%s%s", r.ExitCode, r.Stdout, r.Stderr)
	if r.ExitCode != 0 {
		t.Errorf("imgbase --debug layer --add (latest base Base-2-0 has no filesystem) exit %d: %s", r.ExitCode, r.Stderr)
	} else {
		if r.Stderr == "" {
			t.Errorf("--debug printed nothing on stderr")
		}
		lvs = g.LVs()
		a = added(before, lvs)
		if len(a) != 1 {
			t.Errorf("--debug layer --add made %v, want one layer", a)
		} else {
			checkLayer(t, lvs, a[0], "Base-2-0")
		}
	}

	// Every layer of Base-1-0 has its own filesystem and fstab.
	lvs = g.LVs()
	uuids := map[string]string{"root": rootUUID, "Base-1-0": g.BaseUUID("Base-1-0")}
	for _, l := range layersOf(lvs, "Base-1-0") {
		uuids[l] = checkLayerFS(t, g, l, uuids)
	}
	t.Logf("filesystem UUIDs: %v", uuids)
}

// The oVirt Node seed: `imgbase layout --init` (NVR from the image's build
// metadata), then a new base from an image file. Before each mutating
// verb, its `--debug --dry` form prints and changes nothing.
func TestSeedInitImage(t *testing.T) {
	Parallel(t)
	g := Boot(t)
	dryRun(t, g, "layout", "--init")
	dryRun(t, g, "layout", "--init", "Base-1-0", "--from", "/")
	g.MustRun("imgbase", "layout", "--init")
	dryRun(t, g, "base", "--add", "Base-2-0", "--size", "1G")
	dryRun(t, g, "base", "--add", "--size", "1G", v2img)
	dryRun(t, g, "layer", "--add")
	dryRun(t, g, "layer", "--add", nvr1)
	lvs := g.LVs()
	checkInitTags(t, g, lvs)
	checkBase(t, lvs, nvr1)
	if l := layersOf(lvs, nvr1); len(l) != 1 {
		t.Errorf("layout --init made layers %v of %s, want one", l, nvr1)
	} else {
		checkLayer(t, lvs, l[0], nvr1)
	}
	t.Logf("imgbase layout:\n%s", g.MustRun("imgbase", "layout"))

	g.MustRun("imgbase", "base", "--add", "--size", "1G", v2img)
	lvs = g.LVs()
	checkBase(t, lvs, nvr2)

	if got := strings.TrimSpace(g.MustRun("imgbase", "base", "--latest")); got != nvr2 {
		t.Errorf("base --latest = %q, want %s", got, nvr2)
	}

	before := g.LVs()
	g.MustRun("imgbase", "layer", "--add")
	lvs = g.LVs()
	a := added(before, lvs)
	if len(a) != 1 {
		t.Fatalf("layer --add made %v, want one layer", a)
	}
	checkLayer(t, lvs, a[0], nvr2)
	if v := strings.TrimSpace(g.LayerFile(a[0], "usr/share/imgbase-test/version")); v != "2.0" {
		t.Errorf("layer %s holds version %q, want 2.0", a[0], v)
	}

	before = lvs
	r, err := g.Run(tenMinutes, "imgbase", "--debug", "layer", "--add")
	if err != nil {
		t.Fatal(err)
	}
	if r.ExitCode != 0 {
		t.Fatalf("imgbase --debug layer --add: exit %d\n%s", r.ExitCode, r.Stderr)
	}
	if r.Stderr == "" {
		t.Errorf("--debug printed nothing on stderr")
	}
	lvs = g.LVs()
	if a = added(before, lvs); len(a) != 1 {
		t.Fatalf("--debug layer --add made %v, want one layer", a)
	}
	checkLayer(t, lvs, a[0], nvr2)

	uuids := map[string]string{
		"root": strings.TrimSpace(g.MustRun("blkid", "-s", "UUID", "-o", "value", "/dev/HostVG/root")),
		nvr1:   g.BaseUUID(nvr1), nvr2: g.BaseUUID(nvr2),
	}
	for _, b := range []string{nvr1, nvr2} {
		for _, l := range layersOf(lvs, b) {
			uuids[l] = checkLayerFS(t, g, l, uuids)
		}
	}
	t.Logf("filesystem UUIDs: %v", uuids)
}

// The same update from the oVirt-Node-style squashfs (LiveOS/rootfs.img);
// then a base from an oci-archive on the same guest.
func TestBaseAddSquashfs(t *testing.T) {
	Parallel(t)
	archive := ociArchive(t)
	g := Boot(t)
	g.MustRun("imgbase", "layout", "--init")
	// With a signing key configured, only a correctly signed image goes in.
	sig := signedOnly(t, g, v2sqfs, "v2.squashfs")
	g.MustRun("imgbase", "base", "--add", "--size", "1G", "--signature", sig, v2sqfs)
	lvs := g.LVs()
	checkBase(t, lvs, nvr2)
	g.MustRun("imgbase", "layer", "--add")
	lvs = g.LVs()
	l := layersOf(lvs, nvr2)
	if len(l) == 0 {
		t.Fatalf("no layer of %s; LVs: %s", nvr2, names(lvs))
	}
	for _, name := range l {
		checkLayer(t, lvs, name, nvr2)
		checkLayerFS(t, g, name, nil)
		if v := strings.TrimSpace(g.LayerFile(name, "usr/share/imgbase-test/version")); v != "2.0" {
			t.Errorf("layer %s holds version %q, want 2.0", name, v)
		}
	}
	t.Run("OCIArchive", func(t *testing.T) { baseFromOCIArchive(t, g, archive) })
}

// dryRun runs `imgbase --debug --dry <args>` and checks that it printed
// what it would do and changed nothing.
func dryRun(t *testing.T, g *Guest, args ...string) {
	t.Helper()
	before := g.Snapshot()
	argv := append([]string{"imgbase", "--debug", "--dry"}, args...)
	r, err := g.Run(tenMinutes, argv...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: exit %d\nstdout:\n%s", strings.Join(argv, " "), r.ExitCode, r.Stdout)
	if r.ExitCode != 0 {
		t.Errorf("%s: exit %d: %s", strings.Join(argv, " "), r.ExitCode, r.Stderr)
	}
	if strings.TrimSpace(r.Stdout) == "" {
		t.Errorf("%s printed no commands", strings.Join(argv, " "))
	}
	if after := g.Snapshot(); after != before {
		t.Errorf("%s changed the system:\nbefore:\n%s\nafter:\n%s", strings.Join(argv, " "), before, after)
	}
}
