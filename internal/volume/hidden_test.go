package volume

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFreeHiddenDeletesOnlyWhatTheMountHides(t *testing.T) {
	f, _ := removeFixture(t)
	bind := filepath.Join(f.mnt, "var_log.below")
	// What the bind mount of / shows: the hidden /var/log and a sibling.
	for p, c := range map[string]string{"var/log/stale": "old\n", "var/log/sub/old.gz": strings.Repeat("x", 8192), "var/keep": "keep\n"} {
		os.MkdirAll(filepath.Dir(filepath.Join(bind, p)), 0o755)
		if err := os.WriteFile(filepath.Join(bind, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res, err := f.m.FreeHidden(context.Background(), "/var/log")
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, f.rec.Lines(), []string{
		lvsLine,
		"mount --bind " + f.root + " " + bind,
		"find " + bind + "/var/log -xdev -mindepth 1 -delete",
		"umount " + bind,
	})
	if entries, err := os.ReadDir(filepath.Join(bind, "var/log")); err != nil || len(entries) != 0 {
		t.Errorf("hidden directory: %v %v; want it empty and kept", entries, err)
	}
	if read(t, filepath.Join(bind, "var/keep")) != "keep\n" {
		t.Error("a file beside the hidden directory was touched")
	}
	if res.Below != "/" || res.Freed < 8192 {
		t.Errorf("result %+v", res)
	}
}

func TestFreeHiddenBelowAParentVolume(t *testing.T) {
	f, _ := removeFixture(t, row{name: "var", attr: "Vwi-aotz--", tags: "imgbased:volume", size: 1 << 30, major: 254, minor: 10})
	f.mounts = f.mounts[:1]
	f.mount("/var", "254:10", "ext4", "/dev/mapper/HostVG-var")
	f.mount("/var/log", "254:11", "ext4", "/dev/mapper/HostVG-var_log")
	bind := filepath.Join(f.mnt, "var_log.below")
	if err := os.MkdirAll(filepath.Join(bind, "log"), 0o755); err != nil {
		t.Fatal(err)
	}
	res, err := f.m.FreeHidden(context.Background(), "/var/log")
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, f.rec.Mutations(), []string{
		"mount --bind " + f.root + "/var " + bind,
		"find " + bind + "/log -xdev -mindepth 1 -delete",
		"umount " + bind,
	})
	if res.Below != "/var" {
		t.Errorf("result %+v", res)
	}
}

func TestFreeHiddenRefusedWhenNotMounted(t *testing.T) {
	f, _ := removeFixture(t)
	f.mounts = f.mounts[:1]
	f.mount("/", "254:5", "ext4", "x")
	_, err := f.m.FreeHidden(context.Background(), "/var/log")
	var r *ErrRefused
	if !errors.As(err, &r) || !strings.Contains(err.Error(), "not mounted there") {
		t.Fatalf("error %v", err)
	}
	if m := f.rec.Mutations(); len(m) != 0 {
		t.Errorf("ran %v", m)
	}
	if read(t, filepath.Join(f.root, "var/log/stale")) == "" {
		t.Error("stale file touched")
	}
}
