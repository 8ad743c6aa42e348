//go:build vm

package vm

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

type ociEntry struct {
	hdr  tar.Header
	data string
}

func ociLayer(t *testing.T, es []ociEntry) v1.Layer {
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	for _, e := range es {
		h := e.hdr
		h.Size = int64(len(e.data))
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if err := w.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(e.data))
	}
	w.Close()
	data := b.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// ociArchive writes, on the host, an oci-archive of a two-layer image
// tagged 1.0 and labelled imgbase.nvr=Oci-1-0: the second layer changes a
// file, removes one (whiteout) and replaces a directory (opaque).
func ociArchive(t *testing.T) string {
	l1 := ociLayer(t, []ociEntry{
		{tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755}, ""},
		{tar.Header{Name: "etc/os-release", Mode: 0o644}, "VERSION=1\n"},
		{tar.Header{Name: "etc/motd", Mode: 0o644, Uid: 100, Gid: 200}, "hello\n"},
		{tar.Header{Name: "usr/bin/tool", Mode: 0o4755}, "#!/bin/sh\n"},
		{tar.Header{Name: "usr/bin/tool-hard", Typeflag: tar.TypeLink, Linkname: "usr/bin/tool"}, ""},
		{tar.Header{Name: "usr/bin/a-link", Typeflag: tar.TypeSymlink, Linkname: "../lib/plugins/a.so"}, ""},
		{tar.Header{Name: "usr/lib/plugins/a.so", Mode: 0o644}, "a"},
		{tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3}, ""},
	})
	l2 := ociLayer(t, []ociEntry{
		{tar.Header{Name: "etc/os-release", Mode: 0o644}, "VERSION=2\n"},
		{tar.Header{Name: "etc/.wh.motd"}, ""},
		{tar.Header{Name: "usr/lib/plugins/.wh..wh..opq"}, ""},
		{tar.Header{Name: "usr/lib/plugins/c.so", Mode: 0o600, Uid: 7}, "c"},
	})
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), l1, l2)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Labels = map[string]string{"imgbase.nvr": "Oci-1-0"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "1.0"})); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "oci.tar")
	f, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	w := tar.NewWriter(f)
	if err := w.AddFS(os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	f.Close()
	return archive
}

// baseFromOCIArchive: `base --add` from an oci-archive builds a sealed
// base on a thin LV with a fresh ext4 (metadata_csum_seed) holding the
// layers applied in order; refusals create nothing. g runs an initialised
// host (TestBaseAddSquashfs's guest) with a minisign key configured: the
// unsigned archive is refused for want of a signature, then taken with
// --insecure.
func baseFromOCIArchive(t *testing.T, g *Guest, archive string) {
	if err := g.CopyIn(archive, "/root/oci.tar", 0o644); err != nil {
		t.Fatal(err)
	}
	before := LVNames(g.LVs())
	for _, c := range []struct{ args, want string }{
		{"--size 64M oci-archive:/root/oci.tar:9.9", `no image tagged "9.9" (tags: 1.0)`},
		{"oci-archive:/root/oci.tar:1.0", "--size is required"},
		{"--size 64M docker-archive:/root/oci.tar", `unknown transport "docker-archive"`},
		{"--size 64M oci-archive:/root/oci.tar:1.0", "not signed by a trusted key: no cosign (PEM) public key is configured"},
	} {
		r := g.ImgbaseResult(append([]string{"base", "--add"}, strings.Fields(c.args)...)...)
		if r.ExitCode == 0 || !strings.Contains(r.Stderr, c.want) || strings.Count(strings.TrimSpace(r.Stderr), "\n") > 0 {
			t.Errorf("base --add %s: exit %d, stderr %q; want one line with %q", c.args, r.ExitCode, r.Stderr, c.want)
		}
		if after := LVNames(g.LVs()); after != before {
			t.Errorf("refused base --add %s changed the LVs:\n  %s\nwant\n  %s", c.args, after, before)
		}
	}
	out := g.Imgbase("base", "--add", "--insecure", "--size", "64M", "oci-archive:/root/oci.tar:1.0")
	t.Logf("imgbase base --add: %s", out)
	if !strings.Contains(out, "Added base Oci-1-0 from oci-archive:/root/oci.tar:1.0 (sha256:") {
		t.Errorf("output %q", out)
	}
	lv, ok := g.LVs()["Oci-1-0"]
	if !ok || !lv.HasTag("imgbased:base") || !lv.ReadOnly() || !lv.SkipActivation() || lv.Active() || lv.Pool == "" {
		t.Fatalf("base LV: %+v (present %v); want a sealed thin LV tagged imgbased:base", lv, ok)
	}
	got := g.MustShell(`set -e
lvchange -ay -K HostVG/Oci-1-0
mkdir -p /mnt/oci
mount -o ro /dev/HostVG/Oci-1-0 /mnt/oci
cd /mnt/oci
dumpe2fs -h /dev/HostVG/Oci-1-0 2>/dev/null | grep -o metadata_csum_seed
stat -c '%n %a %u:%g %h %F' etc/os-release usr/bin/tool usr/bin/tool-hard usr/lib/plugins/c.so dev/null
stat -c '%t:%T' dev/null
readlink usr/bin/a-link
cat etc/os-release
ls usr/lib/plugins
test ! -e etc/motd && echo motd-removed
cd /
umount /mnt/oci
lvchange -an HostVG/Oci-1-0`)
	want := `metadata_csum_seed
etc/os-release 644 0:0 1 regular file
usr/bin/tool 4755 0:0 2 regular file
usr/bin/tool-hard 4755 0:0 2 regular file
usr/lib/plugins/c.so 600 7:0 1 regular file
dev/null 666 0:0 1 character special file
1:3
../lib/plugins/a.so
VERSION=2
c.so
motd-removed
`
	if got != want {
		t.Errorf("the base's files:\n%s\nwant\n%s", got, want)
	}
	if r := g.ImgbaseResult("base", "--add", "--insecure", "--size", "64M", "oci-archive:/root/oci.tar:1.0"); r.ExitCode == 0 || !strings.Contains(r.Stderr, "Oci-1-0") {
		t.Errorf("adding the same base again: exit %d, %q", r.ExitCode, r.Stderr)
	}
}
