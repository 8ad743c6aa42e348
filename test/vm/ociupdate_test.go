//go:build vm

package vm

import (
	"encoding/json"
	"strings"
	"testing"
)

// ociLayoutScript defines, for a guest shell, how to make an OCI image
// layout by hand (the guest has no network and no container tools):
// blob FILE stores a file as a blob and prints "DIGEST SIZE"; image NVR
// TAG LAYER... writes the config and manifest of an image of those
// uncompressed layer blobs and points TAG at it in index.json (moving it
// when it exists).
const ociLayoutScript = `set -e
L=/scratch/oci
mkdir -p $L/blobs/sha256
echo '{"imageLayoutVersion":"1.0.0"}' >$L/oci-layout
blob() {
	d=$(sha256sum "$1" | cut -d' ' -f1)
	s=$(stat -c %s "$1")
	[ -e $L/blobs/sha256/$d ] || mv "$1" $L/blobs/sha256/$d
	echo "$d $s"
}
image() {
	nvr=$1 tag=$2; shift 2
	diffs= layers=
	for l in "$@"; do
		set -- $(blob $l); d=$1 s=$2
		diffs="$diffs${diffs:+,}\"sha256:$d\""
		layers="$layers${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"sha256:$d\",\"size\":$s}"
	done
	printf '{"architecture":"amd64","os":"linux","config":{"Labels":{"imgbase.nvr":"%s"}},"rootfs":{"type":"layers","diff_ids":[%s]}}' "$nvr" "$diffs" >/scratch/config.json
	set -- $(blob /scratch/config.json); cd=$1 cs=$2
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' "$cd" "$cs" "$layers" >/scratch/manifest.json
	set -- $(blob /scratch/manifest.json); md=$1 ms=$2
	printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' "$md" "$ms" "$tag" >$L/index.json
	echo "sha256:$md"
}
`

// TestUpdateFromOCI: `imgbase update oci-archive:…` of the v2 test image
// stages it like a file update (new base recording its source, first
// layer with the admin's /etc, trial boot); `update --check` follows an
// oci: layout whose tag then moves; `switch` installs the moved tag and
// tracks it, after which a plain `update` has nothing to do.
func TestUpdateFromOCI(t *testing.T) {
	Parallel(t)
	g := BootLayered(t)
	v2layer := nvr2 + "+1"
	const nvr3 = "imgbase-test-3.0-1"
	v3layer := nvr3 + "+1"
	g.WaitStarted()
	g.MustShell(`echo 'added by the admin' >/etc/imgbase-admin.conf`)

	// Scratch space every layer sees: a thin LV of the test's own.
	mountScratch := `mkdir -p /scratch && mount /dev/HostVG/scratch /scratch`
	g.MustShell(`set -e
lvcreate -q -y -V 3G -T HostVG/pool00 -n scratch
mkfs.ext4 -q /dev/HostVG/scratch
` + mountScratch)
	// v2 as an OCI image of one layer (the raw image's tree, tar'ed with
	// owners and xattrs), tagged 2.0, and as an oci-archive of it.
	digest2 := strings.TrimSpace(g.MustShell(ociLayoutScript + `
mkdir -p /mnt/v2
mount -o ro,loop ` + v2img + ` /mnt/v2
(cd /mnt/v2 && tar --numeric-owner --xattrs --xattrs-include='*' --exclude=./lost+found -cf /scratch/v2.tar .)
umount /mnt/v2
sha256sum /scratch/v2.tar | cut -d' ' -f1 >/scratch/v2.layer
image ` + nvr2 + ` 2.0 /scratch/v2.tar >/scratch/digest2
(cd $L && tar -cf /scratch/v2-oci.tar oci-layout index.json blobs)
cat /scratch/digest2`))
	t.Logf("v2 image %s", digest2)

	check := func(args ...string) checkJSON {
		t.Helper()
		var c checkJSON
		out := g.Imgbase(append([]string{"--json", "update", "--check"}, args...)...)
		if err := json.Unmarshal([]byte(out), &c); err != nil {
			t.Fatalf("update --check --json: %v: %q", err, out)
		}
		return c
	}
	if c := check("oci:/scratch/oci:2.0"); !c.Available || c.Digest != digest2 || c.NVR != nvr2 {
		t.Errorf("check before the update: %+v, want %s available as %s", c, digest2, nvr2)
	}

	out := g.Imgbase("update", "oci-archive:/scratch/v2-oci.tar:2.0")
	t.Logf("imgbase update: %s", out)
	if !strings.Contains(out, "Installed base "+nvr2+" (oci-archive:/scratch/v2-oci.tar:2.0, "+digest2+") and layer "+v2layer) {
		t.Errorf("update output %q", out)
	}
	lvs := g.LVs()
	checkBase(t, lvs, nvr2)
	checkLayer(t, lvs, v2layer, nvr2)
	if !lvs[nvr2].HasTag("imgbased:digest=" + digest2) {
		t.Errorf("base %s tags %v lack its digest", nvr2, lvs[nvr2].Tags())
	}
	if src := baseSource(t, g, nvr2); src.Ref != "oci-archive:/scratch/v2-oci.tar:2.0" || src.Digest != digest2 {
		t.Errorf("layout --json source of %s: %+v", nvr2, src)
	}

	g.ExpectBooted(g.Reboot(), v2layer, "after the update from the oci-archive")
	if st := g.WaitStarted(); st != "active success" {
		t.Errorf("imgbase-boot-success.service: %s", st)
	}
	if a := g.MustRun("cat", "/etc/imgbase-admin.conf"); a != "added by the admin\n" {
		t.Errorf("/etc/imgbase-admin.conf in %s = %q, want the admin's", v2layer, a)
	}
	g.MustShell(mountScratch)
	if c := check("oci:/scratch/oci:2.0"); c.Available || c.Installed != nvr2 || c.Running != nvr2 || c.RunningDigest != digest2 {
		t.Errorf("check of the installed image: %+v", c)
	}

	// The tag moves: v3 is v2's layer plus one that adds a file.
	digest3 := strings.TrimSpace(g.MustShell(ociLayoutScript + `
mkdir -p /scratch/v3/etc && echo v3 >/scratch/v3/etc/imgbase-v3
tar --numeric-owner -C /scratch/v3 -cf /scratch/v3.tar etc/imgbase-v3
image ` + nvr3 + ` 2.0 $L/blobs/sha256/$(cat /scratch/v2.layer) /scratch/v3.tar`))
	before := LVNames(g.LVs())
	r := g.ImgbaseResult("update", "--check", "oci:/scratch/oci:2.0")
	if r.ExitCode != 0 || !strings.Contains(r.Stdout, "Update available: oci:/scratch/oci:2.0 is now "+digest3+" (running base "+nvr2+" is "+digest2+"); 'imgbase update' would install base "+nvr3) {
		t.Errorf("check after the tag moved: exit %d, %q %q", r.ExitCode, r.Stdout, r.Stderr)
	}
	if after := LVNames(g.LVs()); after != before {
		t.Errorf("update --check changed the LVs:\n  %s\nwant\n  %s", after, before)
	}

	out = g.Imgbase("switch", "oci:/scratch/oci:2.0")
	t.Logf("imgbase switch: %s", out)
	if !strings.Contains(out, "Installed base "+nvr3) || !strings.Contains(out, "follows oci:/scratch/oci:2.0") {
		t.Errorf("switch output %q", out)
	}
	if conf := g.MustRun("cat", "/etc/imgbased.conf.d/50-image.conf"); !strings.Contains(conf, "\nimage = oci:/scratch/oci:2.0\n") {
		t.Errorf("50-image.conf: %q", conf)
	}
	// Following the switched image: nothing new.
	if r := g.ImgbaseResult("update"); r.ExitCode != 0 || !strings.Contains(r.Stdout, "Up to date: oci:/scratch/oci:2.0 is "+digest3+", installed as base "+nvr3) {
		t.Errorf("update of the tracked image: exit %d, %q %q", r.ExitCode, r.Stdout, r.Stderr)
	}

	g.ExpectBooted(g.Reboot(), v3layer, "after switch")
	if st := g.WaitStarted(); st != "active success" {
		t.Errorf("imgbase-boot-success.service after switch: %s", st)
	}
	got := g.MustShell(`cat /etc/imgbase-v3 /etc/imgbase-admin.conf; grep '^image' /etc/imgbased.conf.d/50-image.conf`)
	if got != "v3\nadded by the admin\nimage = oci:/scratch/oci:2.0\n" {
		t.Errorf("in %s: %q", v3layer, got)
	}
	g.MustShell(mountScratch)
	if c := check(); c.Available || c.Ref != "oci:/scratch/oci:2.0" || c.Installed != nvr3 {
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
