package main

import (
	"strings"
	"testing"
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
