//go:build vm

package vm

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Registry in the guest: Debian's docker-registry (distribution 2.8),
// unpacked from its package onto the scratch LV so that every layer can
// run it, serving plain HTTP on the guest's loopback (the guest has no
// network) from storage on the scratch LV. Its access log (the unit's
// journal) shows every blob a pull fetched and its size.
const (
	registryUnit = "imgbase-test-registry"
	registryHost = "127.0.0.1:5000"
	registryRepo = registryHost + "/imgbase-test"
	registryRef  = "docker://" + registryRepo + ":2.0"
	registryConf = `version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: /scratch/registry-data
http:
  addr: 127.0.0.1:5000
`
)

// startRegistry starts the registry of the current boot and waits until it
// listens (its first start in a fresh TCG guest took about a minute).
func startRegistry(t *testing.T, g *Guest) {
	t.Helper()
	start := time.Now()
	g.MustShell(`set -e
[ -x /scratch/registry/usr/bin/docker-registry ] || dpkg-deb -x /scratch/docker-registry.deb /scratch/registry
systemd-run -q --unit ` + registryUnit + ` /scratch/registry/usr/bin/docker-registry serve /scratch/registry.yml
for i in $(seq 300); do
	journalctl -q -b -u ` + registryUnit + ` -o cat | grep -q 'listening on 127.0.0.1:5000' && exit 0
	sleep 1
done
journalctl -b -u ` + registryUnit + ` -o cat | tail
exit 1`)
	t.Logf("registry listening after %s", time.Since(start).Round(time.Second))
}

// ociDir is where the registry's disk (EnvOCIDisk) is mounted: v2 in an OCI
// layout (oci/, tag 2.0), the registry's storage with v2 pushed
// (registry/), v2.digest, v2.layer, v2.size and ocilayout.sh.
const ociDir = "/mnt/oci"

// mountScratchLine mounts the scratch LV of startGuestRegistry, the
// registry's disk and the registry's storage again (after a reboot): the
// disk's storage below, the scratch LV's above, which takes what the tests
// push.
const mountScratchLine = `set -e
mkdir -p /scratch ` + ociDir + `
mountpoint -q /scratch || mount /dev/HostVG/scratch /scratch
mountpoint -q ` + ociDir + ` || mount -o ro LABEL=ocidisk ` + ociDir + `
mkdir -p /scratch/registry-upper /scratch/registry-work /scratch/registry-data
mountpoint -q /scratch/registry-data || mount -t overlay -o lowerdir=` + ociDir + `/registry,upperdir=/scratch/registry-upper,workdir=/scratch/registry-work registry /scratch/registry-data`

// startGuestRegistry makes scratch space every layer sees (a thin LV of
// the test's own at /scratch), puts the registry's package, its
// configuration and the pusher there, starts the registry on the storage
// the host pushed v2 into and lets imgbase reach it over plain HTTP, as an
// admin would.
func startGuestRegistry(t *testing.T, g *Guest) {
	t.Helper()
	pusher, deb := os.Getenv(EnvOCIPush), os.Getenv(EnvRegistryDeb)
	if pusher == "" || deb == "" || os.Getenv(EnvOCIDisk) == "" {
		t.Fatalf("%s, %s and %s must be set (test/image/build.sh all)", EnvOCIPush, EnvRegistryDeb, EnvOCIDisk)
	}
	g.MustShell(`mkdir -p /etc/imgbased.conf.d && printf '[update]\ninsecure_registries = 127.0.0.1:5000\n' >/etc/imgbased.conf.d/60-registry.conf`)
	g.MustShell(`set -e
lvcreate -q -y -V 3G -T HostVG/pool00 -n scratch
mkfs.ext4 -q /dev/HostVG/scratch`)
	g.MustShell(mountScratchLine)
	if err := g.CopyIn(deb, "/scratch/docker-registry.deb", 0o644); err != nil {
		t.Fatal(err)
	}
	if err := g.CopyIn(pusher, "/scratch/ocipush", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := g.WriteFile("/scratch/registry.yml", []byte(registryConf), 0o644); err != nil {
		t.Fatal(err)
	}
	startRegistry(t, g)
}

// pushedV2 returns what the host pushed to tag 2.0 of the registry's
// storage (build.sh ociregistry): v2 as an OCI image of one layer (v2.img's
// tree, tar'ed with owners and xattrs), its manifest's digest and its
// layer's digest and size.
func pushedV2(t *testing.T, g *Guest) (digest, layer string, size int64) {
	t.Helper()
	f := strings.Fields(g.MustShell("cat " + ociDir + "/v2.digest " + ociDir + "/v2.layer " + ociDir + "/v2.size"))
	if len(f) != 3 {
		t.Fatalf("the registry's disk describes v2 as %q", f)
	}
	size, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil {
		t.Fatalf("v2.size: %v", err)
	}
	return f[0], f[1], size
}

// pushV3 moves tag 2.0 of the guest's registry to v3: v2's layer (on the
// registry's disk) plus one that adds a file, named nvr, pushed from a
// layout in /scratch/oci. It returns the manifest's digest and the new
// layer's digest and size.
func pushV3(t *testing.T, g *Guest, nvr string) (digest, layer string, size int64) {
	t.Helper()
	out := strings.Fields(g.MustShell(`set -e
L=/scratch/oci
. ` + ociDir + `/ocilayout.sh
v2=$(cut -d: -f2 ` + ociDir + `/v2.layer)
ln -sf ` + ociDir + `/oci/blobs/sha256/$v2 $L/blobs/sha256/$v2
mkdir -p /scratch/v3/etc && echo v3 >/scratch/v3/etc/imgbase-v3
tar --numeric-owner -C /scratch/v3 -cf /scratch/v3.tar etc/imgbase-v3
layer=$(sha256sum /scratch/v3.tar | cut -d' ' -f1)
size=$(stat -c %s /scratch/v3.tar)
digest=$(image ` + nvr + ` 2.0 $L/blobs/sha256/$v2 /scratch/v3.tar)
pushed=$(/scratch/ocipush $L 2.0 ` + registryRepo + `:2.0)
[ "$pushed" = "$digest" ] || { echo "pushed $pushed, want $digest" >&2; exit 1; }
echo $digest sha256:$layer $size`))
	if len(out) != 3 {
		t.Fatalf("pushing v3: %q", out)
	}
	size, err := strconv.ParseInt(out[2], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return out[0], out[1], size
}

// smallRepo is a second repository of the guest's registry, whose tag 1
// moves from a tiny image of one layer to one of two (pushSmall): make
// test's re-pull of a moved tag, without a second base of the whole tree
// (check-long moves 2.0 itself, pushV3).
const smallRepo = "imgbase-small"

// pushSmall points tag 1 of smallRepo at an image named nvr: the layers
// of the previous call's image (its layout is kept in /scratch/oci-small)
// plus one holding /etc/<file>. It returns the manifest's digest and the
// new layer's digest and size.
func pushSmall(t *testing.T, g *Guest, nvr, file string) (digest, layer string, size int64) {
	t.Helper()
	out := strings.Fields(g.MustShell(`set -e
L=/scratch/oci-small
. ` + ociDir + `/ocilayout.sh
d=/scratch/` + file + `
mkdir -p $d/etc && echo ` + nvr + ` >$d/etc/` + file + `
tar --numeric-owner -C $d -cf $d.tar etc
layer=$(sha256sum $d.tar | cut -d' ' -f1)
size=$(stat -c %s $d.tar)
prev=$(cat $L/layers 2>/dev/null || true)
digest=$(image ` + nvr + ` 1 $prev $d.tar)
echo "$prev $L/blobs/sha256/$layer" >$L/layers
pushed=$(/scratch/ocipush $L 1 ` + registryHost + `/` + smallRepo + `:1)
[ "$pushed" = "$digest" ] || { echo "pushed $pushed, want $digest" >&2; exit 1; }
echo $digest sha256:$layer $size`))
	if len(out) != 3 {
		t.Fatalf("pushing %s: %q", nvr, out)
	}
	size, err := strconv.ParseInt(out[2], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return out[0], out[1], size
}

// blobGets returns the registry's access log lines of this boot for GETs
// of blobs of repository repo: "DIGEST STATUS BYTES" each.
func blobGets(t *testing.T, g *Guest, repo string) []string {
	t.Helper()
	out := g.MustShell(`journalctl -q -b -u ` + registryUnit + ` -o cat | sed -n 's,.*"GET /v2/` + repo + `/blobs/\(sha256:[0-9a-f]*\) HTTP/[0-9.]*" \([0-9]*\) \([0-9]*\) .*,\1 \2 \3,p'`)
	return strings.Fields(strings.ReplaceAll(out, " ", "_"))
}

// pulled reads "Downloaded N bytes, M from the blob cache" from the
// output of update or switch.
func pulled(t *testing.T, out string) (downloaded, cached int64) {
	t.Helper()
	m := regexp.MustCompile(`Downloaded (\d+) bytes, (\d+) from the blob cache`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no download count in %q", out)
	}
	downloaded, _ = strconv.ParseInt(m[1], 10, 64)
	cached, _ = strconv.ParseInt(m[2], 10, 64)
	return downloaded, cached
}

// TestUpdateFromOCI: `imgbase update docker://…` from a real registry
// (distribution 2.8, in the guest) stages the v2 test image like a file
// update (new base recording its source, first layer with the admin's
// /etc, trial boot); `update --check` follows the registry's tag, which
// then moves to v3 (v2's layer plus one); `switch` installs the moved tag
// downloading only the new layer (the old one comes from the blob cache,
// kept on a volume so that it outlives the switch of layers) and tracks
// it, after which a plain `update` has nothing to do. make test stops after
// the first pull's boot; make check-long runs the tag's move, the switch
// and its boot (a second base of the whole tree: ~8 minutes beside
// another guest).
func TestUpdateFromOCI(t *testing.T) {
	Parallel(t)
	g := BootLayered(t)
	v2layer := nvr2 + "+1"
	const nvr3 = "imgbase-test-3.0-1"
	v3layer := nvr3 + "+1"
	g.WaitStarted()
	g.MustShell(`echo 'added by the admin' >/etc/imgbase-admin.conf`)
	// The blob cache on a volume: every layer sees it, so the layer that
	// boots from the pulled image still has the blobs of its pull.
	g.MustShell(`mkdir -p /var/cache/imgbase`)
	g.Imgbase("volume", "--create", "/var/cache/imgbase", "2G")

	startGuestRegistry(t, g) // plain HTTP: the admin allows it
	digest2, v2sum, v2size := pushedV2(t, g)
	t.Logf("v2 image %s in %s, layer %s of %d bytes", digest2, registryRef, v2sum, v2size)

	check := func(args ...string) checkJSON {
		t.Helper()
		var c checkJSON
		out := g.Imgbase(append([]string{"--json", "update", "--check"}, args...)...)
		if err := json.Unmarshal([]byte(out), &c); err != nil {
			t.Fatalf("update --check --json: %v: %q", err, out)
		}
		return c
	}
	if c := check(registryRef); !c.Available || c.Digest != digest2 || c.NVR != nvr2 {
		t.Errorf("check before the update: %+v, want %s available as %s", c, digest2, nvr2)
	}
	// The same image in the layout it was pushed from.
	if c := check("oci:" + ociDir + "/oci:2.0"); !c.Available || c.Digest != digest2 {
		t.Errorf("check of the oci: layout: %+v, want %s available", c, digest2)
	}

	out := g.Imgbase("update", registryRef)
	t.Logf("imgbase update: %s", out)
	if !strings.Contains(out, "Installed base "+nvr2+" ("+registryRef+", "+digest2+") and layer "+v2layer) {
		t.Errorf("update output %q", out)
	}
	if d, c := pulled(t, out); d != v2size || c != 0 {
		t.Errorf("update downloaded %d bytes, %d from the cache; want the layer's %d, 0", d, c, v2size)
	}
	gets := blobGets(t, g, "imgbase-test")
	t.Logf("registry blob GETs of the update: %v", gets)
	if !slices.Contains(gets, fmt.Sprintf("%s_200_%d", v2sum, v2size)) {
		t.Errorf("registry access log lacks the GET of layer %s (%d bytes): %v", v2sum, v2size, gets)
	}
	lvs := g.LVs()
	checkBase(t, lvs, nvr2)
	checkLayer(t, lvs, v2layer, nvr2)
	if !lvs[nvr2].HasTag("imgbased:digest=" + digest2) {
		t.Errorf("base %s tags %v lack its digest", nvr2, lvs[nvr2].Tags())
	}
	if src := baseSource(t, g, nvr2); src.Ref != registryRef || src.Digest != digest2 {
		t.Errorf("layout --json source of %s: %+v", nvr2, src)
	}

	g.ExpectBooted(g.Reboot(), v2layer, "after the update from the registry")
	if st := g.WaitStarted(); st != "active success" {
		t.Errorf("imgbase-boot-success.service: %s", st)
	}
	if a := g.MustRun("cat", "/etc/imgbase-admin.conf"); a != "added by the admin\n" {
		t.Errorf("/etc/imgbase-admin.conf in %s = %q, want the admin's", v2layer, a)
	}
	if v := g.MustRun("cat", "/usr/share/imgbase-test/version"); v != "2.0\n" {
		t.Errorf("running version %q, want 2.0", v)
	}
	g.MustShell(mountScratchLine)
	startRegistry(t, g)
	if c := check(registryRef); c.Available || c.Installed != nvr2 || c.Running != nvr2 || c.RunningDigest != digest2 {
		t.Errorf("check of the installed image: %+v", c)
	}

	// A moved tag is pulled again downloading only its new layer (#11),
	// shown on smallRepo's tiny image: a base of each version, the second
	// taking the first's layer from the blob cache.
	smallRef := "docker://" + registryHost + "/" + smallRepo + ":1"
	_, small1, size1 := pushSmall(t, g, "imgbase-small-1.0-1", "small-1")
	out = g.Imgbase("base", "--add", "--size", "64M", smallRef)
	t.Logf("imgbase base --add %s (one layer): %s", smallRef, out)
	if d, c := pulled(t, out); d != size1 || c != 0 {
		t.Errorf("the first pull of %s downloaded %d bytes, %d from the cache; want its layer's %d, 0", smallRef, d, c, size1)
	}
	digestS2, small2, size2 := pushSmall(t, g, "imgbase-small-2.0-1", "small-2")
	out = g.Imgbase("base", "--add", "--size", "64M", smallRef)
	t.Logf("imgbase base --add %s (the tag moved to %s, one layer more): %s", smallRef, digestS2, out)
	if !strings.Contains(out, "Added base imgbase-small-2.0-1 from "+smallRef+" ("+digestS2+")") {
		t.Errorf("base --add of the moved tag: %q", out)
	}
	if d, c := pulled(t, out); d != size2 || c != size1 {
		t.Errorf("the re-pull of the moved tag downloaded %d bytes, %d from the cache; want the new layer's %d, the cached layer's %d", d, c, size2, size1)
	}
	gets = blobGets(t, g, smallRepo)
	t.Logf("registry blob GETs of %s: %v", smallRepo, gets)
	// Each layer once (and each image's config blob once).
	for _, want := range []string{fmt.Sprintf("%s_200_%d", small1, size1), fmt.Sprintf("%s_200_%d", small2, size2)} {
		layer, _, _ := strings.Cut(want, "_")
		n := 0
		for _, g := range gets {
			if strings.HasPrefix(g, layer+"_") {
				n++
			}
		}
		if n != 1 || !slices.Contains(gets, want) {
			t.Errorf("registry blob GETs of the two pulls: %v, want %s once", gets, want)
		}
	}
	// Both layers are in the second base, in order.
	if got := g.MustShell(`set -e
lvchange -q -ay -K ` + vg + `/imgbase-small-2.0-1
mkdir -p /mnt/small && mount -o ro /dev/` + vg + `/imgbase-small-2.0-1 /mnt/small
cat /mnt/small/etc/small-1 /mnt/small/etc/small-2
umount /mnt/small && lvchange -q -an ` + vg + `/imgbase-small-2.0-1`); got != "imgbase-small-1.0-1\nimgbase-small-2.0-1\n" {
		t.Errorf("the base of the moved tag holds %q, want both layers' files", got)
	}
	g.Imgbase("base", "--remove", "imgbase-small-1.0-1")
	g.Imgbase("base", "--remove", "imgbase-small-2.0-1")

	if !Long() {
		return // the tag's move and switch: a second base of the same 658 MB tree
	}
	// The tag moves: v3 is v2's layer plus one that adds a file.
	digest3, v3sum, v3size := pushV3(t, g, nvr3)
	t.Logf("v3 image %s pushed to %s, layers %s (cached) and %s of %d bytes", digest3, registryRef, v2sum, v3sum, v3size)
	before := LVNames(g.LVs())
	r := g.ImgbaseResult("update", "--check", registryRef)
	if r.ExitCode != 0 || !strings.Contains(r.Stdout, "Update available: "+registryRef+" is now "+digest3+" (running base "+nvr2+" is "+digest2+"); 'imgbase update' would install base "+nvr3) {
		t.Errorf("check after the tag moved: exit %d, %q %q", r.ExitCode, r.Stdout, r.Stderr)
	}
	if after := LVNames(g.LVs()); after != before {
		t.Errorf("update --check changed the LVs:\n  %s\nwant\n  %s", after, before)
	}

	out = g.Imgbase("switch", registryRef)
	t.Logf("imgbase switch: %s", out)
	if !strings.Contains(out, "Installed base "+nvr3) || !strings.Contains(out, "follows "+registryRef) {
		t.Errorf("switch output %q", out)
	}
	// The re-pull of the changed tag: only the new layer on the wire.
	if d, c := pulled(t, out); d != v3size || c != v2size {
		t.Errorf("switch downloaded %d bytes, %d from the cache; want the new layer's %d, the cached layer's %d", d, c, v3size, v2size)
	}
	gets = blobGets(t, g, "imgbase-test")
	t.Logf("registry blob GETs of this boot (push of v3, switch): %v", gets)
	if !slices.Contains(gets, fmt.Sprintf("%s_200_%d", v3sum, v3size)) {
		t.Errorf("registry access log lacks the GET of the new layer %s (%d bytes): %v", v3sum, v3size, gets)
	}
	for _, l := range gets {
		if strings.HasPrefix(l, v2sum+"_") {
			t.Errorf("the cached layer %s was fetched again: %v", v2sum, gets)
		}
	}
	if conf := g.MustRun("cat", "/etc/imgbased.conf.d/50-image.conf"); !strings.Contains(conf, "\nimage = "+registryRef+"\n") {
		t.Errorf("50-image.conf: %q", conf)
	}
	// Following the switched image: nothing new.
	if r := g.ImgbaseResult("update"); r.ExitCode != 0 || !strings.Contains(r.Stdout, "Up to date: "+registryRef+" is "+digest3+", installed as base "+nvr3) {
		t.Errorf("update of the tracked image: exit %d, %q %q", r.ExitCode, r.Stdout, r.Stderr)
	}

	g.ExpectBooted(g.Reboot(), v3layer, "after switch")
	if st := g.WaitStarted(); st != "active success" {
		t.Errorf("imgbase-boot-success.service after switch: %s", st)
	}
	got := g.MustShell(`cat /etc/imgbase-v3 /etc/imgbase-admin.conf; grep '^image' /etc/imgbased.conf.d/50-image.conf`)
	if got != "v3\nadded by the admin\nimage = "+registryRef+"\n" {
		t.Errorf("in %s: %q", v3layer, got)
	}
	g.MustShell(mountScratchLine)
	startRegistry(t, g)
	if c := check(); c.Available || c.Ref != registryRef || c.Installed != nvr3 {
		t.Errorf("check of the tracked image after switch: %+v", c)
	}
}

type checkJSON struct {
	Ref           string `json:"ref"`
	Digest        string `json:"digest"`
	Available     bool   `json:"available"`
	Installed     string `json:"installed"`
	NVR           string `json:"nvr"`
	Running       string `json:"running"`
	RunningDigest string `json:"running_digest"`
}

type sourceJSON struct {
	Ref    string `json:"ref"`
	Digest string `json:"digest"`
}

// baseSource reads a base's source from layout --json.
func baseSource(t *testing.T, g *Guest, base string) sourceJSON {
	t.Helper()
	var tree struct {
		Bases []struct {
			Name   string      `json:"name"`
			Source *sourceJSON `json:"source"`
		} `json:"bases"`
	}
	out := g.Imgbase("--json", "layout")
	if err := json.Unmarshal([]byte(out), &tree); err != nil {
		t.Fatalf("layout --json: %v: %q", err, out)
	}
	for _, b := range tree.Bases {
		if b.Name == base && b.Source != nil {
			return *b.Source
		}
	}
	return sourceJSON{}
}
