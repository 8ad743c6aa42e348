package main

import (
	"strings"
	"testing"

	"github.com/imgbase/imgbase/internal/host"
	"github.com/imgbase/imgbase/internal/layout"
	"github.com/imgbase/imgbase/internal/lvm"
	"github.com/imgbase/imgbase/internal/origin"
)

func TestOCISettings(t *testing.T) {
	conf := map[string]string{"insecure_registries": "127.0.0.1:5000, registry.lan\tother", "base_fs": " xfs "}
	get := func(section, key string) (string, bool) {
		v, ok := conf[key]
		return v, ok && section == "update"
	}
	ins, fs := ociSettings(get)
	if strings.Join(ins, "|") != "127.0.0.1:5000|registry.lan|other" || fs != "xfs" {
		t.Errorf("%q %q", ins, fs)
	}
	ins, fs = ociSettings(func(string, string) (string, bool) { return "", false })
	if len(ins) != 0 || fs != "" {
		t.Errorf("unset: %q %q", ins, fs)
	}
}

func TestOCIImageArgument(t *testing.T) {
	for _, c := range []struct {
		arg string
		oci bool
		err bool
	}{
		{"/mnt/payload/v2.img", false, false},
		{"docker://127.0.0.1:5000/os/base:2.0", true, false},
		{"oci-archive:/root/x.tar:1.0", true, false},
		{"docker-archive:/x.tar", false, true},
	} {
		_, oci, err := ociImage(c.arg)
		if oci != c.oci || (err != nil) != c.err {
			t.Errorf("%s: oci %v err %v", c.arg, oci, err)
		}
	}
}

func TestBaseSize(t *testing.T) {
	for v, want := range map[string]uint64{"": 0, "4G": 4 << 30, " 512M ": 512 << 20} {
		n, err := baseSize(func(s, k string) (string, bool) { return v, s == "update" && k == "base_size" })
		if err != nil || n != want {
			t.Errorf("%q: %d %v, want %d", v, n, err, want)
		}
	}
	if _, err := baseSize(func(string, string) (string, bool) { return "lots", true }); err == nil || !strings.Contains(err.Error(), "base_size") {
		t.Errorf("a bad base_size: %v", err)
	}
}

func TestCheckLine(t *testing.T) {
	up := checkLine(&host.CheckResult{Ref: "oci:/l:2.0", Digest: "sha256:bb", Installed: "Os-2-0"})
	if up != "Up to date: oci:/l:2.0 is sha256:bb, installed as base Os-2-0" {
		t.Errorf("%q", up)
	}
	av := checkLine(&host.CheckResult{Ref: "oci:/l:2.0", Digest: "sha256:cc", Available: true, NVR: "Os-3-0", Running: "Os-2-0", RunningDigest: "sha256:bb"})
	if av != "Update available: oci:/l:2.0 is now sha256:cc (running base Os-2-0 is sha256:bb); 'imgbase update' would install base Os-3-0" {
		t.Errorf("%q", av)
	}
}

func TestAutoReboot(t *testing.T) {
	for v, want := range map[string]bool{"": false, "no": false, "yes": true, " Yes ": true, "true": true, "maybe": false} {
		if got := autoReboot(func(s, k string) (string, bool) { return v, s == "update" && k == "auto_reboot" }); got != want {
			t.Errorf("%q: %v", v, got)
		}
	}
}

func TestLayerImages(t *testing.T) {
	o := origin.Origin{Ref: "docker://r.example/os:2", Digest: "sha256:" + strings.Repeat("ab", 32)}
	lvs := []lvm.LV{
		{VG: "HostVG", VGTags: []string{lvm.TagVG}, Name: "pool00", Attr: "twi-aotz--", Tags: []string{lvm.TagPool}},
		{VG: "HostVG", VGTags: []string{lvm.TagVG}, Name: "Os-1-0", Attr: "Vri---tz-k", Pool: "pool00", Tags: []string{lvm.TagBase}},
		{VG: "HostVG", VGTags: []string{lvm.TagVG}, Name: "Os-1-0+1", Attr: "Vwi-aotz--", Pool: "pool00", Origin: "Os-1-0", Tags: []string{lvm.TagLayer}},
		{VG: "HostVG", VGTags: []string{lvm.TagVG}, Name: "Os-2-0", Attr: "Vri---tz-k", Pool: "pool00", Tags: append([]string{lvm.TagBase}, origin.Tags(o)...)},
		{VG: "HostVG", VGTags: []string{lvm.TagVG}, Name: "Os-2-0+1", Attr: "Vwi-a-tz--", Pool: "pool00", Origin: "Os-2-0", Tags: []string{lvm.TagLayer}},
	}
	tr, err := layout.Build(lvs)
	if err != nil {
		t.Fatal(err)
	}
	got := layerImages(tr, "Os-1-0+1", "Os-2-0+1", "", "Gone-1-0+1")
	if len(got) != 1 || got["Os-2-0+1"] != o {
		t.Errorf("images %+v", got)
	}
	if txt := (statusImages{Images: got}).imagesText(); txt != "image of Os-2-0+1: docker://r.example/os:2 ("+o.Digest+")\n" {
		t.Errorf("text %q", txt)
	}
}
