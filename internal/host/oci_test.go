package host

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imgbase/imgbase/internal/imageref"
	"github.com/imgbase/imgbase/internal/keyring"
	"github.com/imgbase/imgbase/internal/registry"
)

// ociLayout writes an OCI layout holding one image tagged 1.0 with the
// given label and one layer with etc/os-release.
func ociLayout(t *testing.T, nvrLabel string) string {
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	w.WriteHeader(&tar.Header{Name: "etc/os-release", Mode: 0o644, Size: 10, Typeflag: tar.TypeReg})
	w.Write([]byte("VERSION=2\n"))
	w.Close()
	data := b.Bytes()
	l, _ := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), l)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	if nvrLabel != "" {
		cf.Config.Labels = map[string]string{"imgbase.nvr": nvrLabel}
	}
	img, _ = mutate.ConfigFile(img, cf)
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "1.0"})); err != nil {
		t.Fatal(err)
	}
	return dir
}

func ociReq(t *testing.T, s string) OCIRequest {
	ref, err := imageref.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return OCIRequest{Ref: ref, Size: 1 << 30, Registry: registry.New(registry.Options{Arch: "amd64"})}
}

func TestAddBaseFromOCI(t *testing.T) {
	f := newFixture(t, "running", 254, 5)
	dir := ociLayout(t, "Oci-3-0")
	res, err := f.h.AddBaseFromOCI(context.Background(), ociReq(t, "oci:"+dir+":1.0"))
	if err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(f.mnt, "Oci-3-0")
	wantLines(t, f.rec.Lines(), []string{
		lvsLine,
		"lvcreate --thin --virtualsize 1073741824b --name Oci-3-0 --addtag imgbased:base --addtag imgbased:digest=" + res.Digest +
			" --addtag imgbased:ref=" + base64.RawURLEncoding.EncodeToString([]byte("oci:"+dir+":1.0")) + " HostVG/pool00",
		"mkfs.ext4 -q -E nodiscard -O metadata_csum_seed /dev/HostVG/Oci-3-0",
		"mount -t ext4 /dev/HostVG/Oci-3-0 " + mnt,
		"umount " + mnt,
		"e2fsck -fn /dev/HostVG/Oci-3-0",
		"lvchange --permission r --setactivationskip y --activate n HostVG/Oci-3-0",
	})
	// The fake mount left a plain directory: the layer went into it.
	if data, _ := os.ReadFile(filepath.Join(mnt, "etc/os-release")); string(data) != "VERSION=2\n" {
		t.Errorf("extracted os-release: %q", data)
	}
	if res.Base != "Oci-3-0" || !strings.HasPrefix(res.Digest, "sha256:") || res.Downloaded == 0 {
		t.Errorf("result %+v", res)
	}
}

func TestAddBaseFromOCIRefusals(t *testing.T) {
	for _, c := range []struct {
		name, ref, label, nvr, want string
		size                        uint64
		keys                        keyring.Ring
	}{
		{"unknown tag", ":9.9", "Oci-3-0", "", `no image tagged "9.9"`, 1 << 30, keyring.Ring{}},
		{"no name", ":1.0", "", "", "no label imgbase.nvr", 1 << 30, keyring.Ring{}},
		{"taken name", ":1.0", "Base-2-0", "", "an LV of that name exists", 1 << 30, keyring.Ring{}},
		{"no size", ":1.0", "Oci-3-0", "", "--size is required", 0, keyring.Ring{}},
		// A minisign key (for image files) means signed images only: an
		// OCI image is not let through for want of a cosign key.
		{"minisign key only", ":1.0", "Oci-3-0", "", "no cosign (PEM) public key is configured", 1 << 30,
			keyring.Ring{Minisign: []keyring.MinisignKey{{Path: "/etc/imgbased/keys/files.pub"}}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, "running", 254, 5)
			req := ociReq(t, "oci:"+ociLayout(t, c.label)+c.ref)
			req.NVR, req.Size, req.Keys = c.nvr, c.size, c.keys
			_, err := f.h.AddBaseFromOCI(context.Background(), req)
			var r *ErrRefused
			if !errors.As(err, &r) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want a refusal with %q", err, c.want)
			}
			wantLines(t, f.rec.Lines(), []string{lvsLine})
		})
	}
}

// TestAddBaseFromOCIInsecure: --insecure takes an image without a trusted
// signature even when keys are configured.
func TestAddBaseFromOCIInsecure(t *testing.T) {
	f := newFixture(t, "running", 254, 5)
	req := ociReq(t, "oci:"+ociLayout(t, "Oci-3-0")+":1.0")
	req.Keys = keyring.Ring{Minisign: []keyring.MinisignKey{{Path: "/etc/imgbased/keys/files.pub"}}}
	req.Insecure = true
	if _, err := f.h.AddBaseFromOCI(context.Background(), req); err != nil {
		t.Fatal(err)
	}
}

// TestAddBaseFromOCIFailedMkfs: a failure after the LV exists removes it.
func TestAddBaseFromOCIFailedMkfs(t *testing.T) {
	f := newFixture(t, "running", 254, 5)
	f.rec.On("mkfs.ext4", "", errors.New("no space"))
	if _, err := f.h.AddBaseFromOCI(context.Background(), ociReq(t, "oci:"+ociLayout(t, "Oci-3-0")+":1.0")); err == nil {
		t.Fatal("mkfs failure ignored")
	}
	m := f.rec.Mutations()
	if last := m[len(m)-1]; last != "lvremove --yes HostVG/Oci-3-0" {
		t.Errorf("mutations %q: the LV is not removed", m)
	}
}

func TestAddBaseFromOCIXFS(t *testing.T) {
	f := newFixture(t, "running", 254, 5)
	req := ociReq(t, "oci:"+ociLayout(t, "Oci-3-0")+":1.0")
	req.FSType = "xfs"
	if _, err := f.h.AddBaseFromOCI(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	lines := strings.Join(f.rec.Lines(), "\n")
	for _, want := range []string{"mkfs.xfs -q -K /dev/HostVG/Oci-3-0", "mount -t xfs /dev/HostVG/Oci-3-0", "xfs_repair -n /dev/HostVG/Oci-3-0"} {
		if !strings.Contains(lines, want) {
			t.Errorf("no %q in:\n%s", want, lines)
		}
	}
}
