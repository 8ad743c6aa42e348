package host

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/imgbase/imgbase/internal/blobcache"
	"github.com/imgbase/imgbase/internal/journal"
	"github.com/imgbase/imgbase/internal/origin"
)

// ociUpdateFixture is updateFixture for an update from an OCI layout
// whose image is named Oci-3-0. tagged, when set, names a base whose LV
// carries the image's digest, as if installed from it before.
func ociUpdateFixture(t *testing.T, dir, tagged string) (*fixture, *fakeBoot, OCIUpdateRequest) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "running.json"))
	if err != nil {
		t.Fatal(err)
	}
	if tagged != "" {
		req := ociReq(t, "oci:"+dir+":1.0")
		img, err := req.Registry.Resolve(context.Background(), req.Ref)
		if err != nil {
			t.Fatal(err)
		}
		img.Close()
		tags := strings.Join(append([]string{"imgbased:base"}, origin.Tags(origin.Origin{Ref: req.Ref.String(), Digest: img.Digest})...), ",")
		var rep struct {
			Report []struct {
				LV []map[string]string `json:"lv"`
			} `json:"report"`
		}
		if err := json.Unmarshal(data, &rep); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, lv := range rep.Report[0].LV {
			if lv["lv_name"] == tagged {
				lv["lv_tags"], found = tags, true
			}
		}
		if !found {
			t.Fatalf("no base %s in the report", tagged)
		}
		data, _ = json.Marshal(rep)
	}
	f := newFixtureReport(t, data, 254, 5)
	fb := &fakeBoot{def: "Base-1-0+1"}
	f.h.Boot = fb
	for _, d := range []string{"etc", "run/imgbase/mnt/Base-1-0/etc", "run/imgbase/mnt/Oci-3-0+1/etc"} {
		os.MkdirAll(filepath.Join(f.h.Root, d), 0o755)
	}
	os.WriteFile(filepath.Join(f.h.Root, "etc/hostname"), []byte("admin-host\n"), 0o644)
	os.WriteFile(filepath.Join(f.h.Root, "run/imgbase/mnt/Base-1-0/etc/hostname"), []byte("debian\n"), 0o644)
	os.WriteFile(filepath.Join(f.h.Root, "run/imgbase/mnt/Oci-3-0+1/etc/hostname"), []byte("debian\n"), 0o644)
	return f, fb, OCIUpdateRequest{OCIRequest: ociReq(t, "oci:"+dir+":1.0"), Keep: 3}
}

func TestUpdateFromOCICompletes(t *testing.T) {
	dir := ociLayout(t, "Oci-3-0")
	f, fb, req := ociUpdateFixture(t, dir, "")
	req.Size = 0 // the running base's size
	req.Track = true
	res, err := f.h.UpdateFromOCI(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Layer != "Oci-3-0+1" || res.Base.Base != "Oci-3-0" || res.From != "Base-1-0+1" || !strings.HasPrefix(res.Digest, "sha256:") || res.Downloaded == 0 {
		t.Errorf("result %+v", res)
	}
	var created string
	for _, m := range f.rec.Mutations() {
		if strings.HasPrefix(m, "lvcreate --thin --virtualsize") {
			created = m
		}
	}
	tags := origin.Tags(origin.Origin{Ref: "oci:" + dir + ":1.0", Digest: res.Digest})
	// Base-1-0, the running layer's base, is 6 GiB.
	want := "lvcreate --thin --virtualsize 6442450944b --name Oci-3-0 --addtag imgbased:base --addtag " + tags[0] + " --addtag " + tags[1] + " HostVG/pool00"
	if created != want {
		t.Errorf("base created with\n%s\nwant\n%s", created, want)
	}
	// The layers went into the new base's (fake) mount.
	if data, _ := os.ReadFile(filepath.Join(f.mnt, "Oci-3-0/etc/os-release")); string(data) != "VERSION=2\n" {
		t.Errorf("os-release in the base: %q", data)
	}
	if data, _ := os.ReadFile(filepath.Join(f.mnt, "Oci-3-0+1/etc/hostname")); string(data) != "admin-host\n" {
		t.Errorf("hostname in the new layer: %q", data)
	}
	for _, root := range []string{filepath.Join(f.mnt, "Oci-3-0+1"), f.h.Root} {
		data, _ := os.ReadFile(filepath.Join(root, TrackFile))
		if !strings.Contains(string(data), "\nimage = oci:"+dir+":1.0\n") {
			t.Errorf("%s tracks %q", root, data)
		}
	}
	if len(fb.added) != 1 || fb.added[0] != "Oci-3-0+1" {
		t.Errorf("boot entries %v", fb.added)
	}
	if _, err := os.Stat(filepath.Join(f.h.Root, JournalFile)); !os.IsNotExist(err) {
		t.Errorf("journal left behind: %v", err)
	}
	if len(res.Removed) != 1 || res.Removed[0] != "Base-2-0" {
		t.Errorf("removed %v", res.Removed)
	}
}

// A failure at every mutating command before the commit leaves no LV, no
// mount, no boot entry and no journal; after it, recover finishes.
func TestUpdateFromOCIFailureAtEveryStepUndoes(t *testing.T) {
	dir := ociLayout(t, "Oci-3-0")
	f, _, req := ociUpdateFixture(t, dir, "")
	if _, err := f.h.UpdateFromOCI(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	total := len(f.rec.Mutations())
	for k := 0; k < total; k++ {
		f, fb, req := ociUpdateFixture(t, dir, "")
		inj := &failAt{next: f.h.Run, k: k}
		f.h.Run = inj
		_, err := f.h.UpdateFromOCI(context.Background(), req)
		muts := f.rec.Mutations()
		failed := muts[k]
		if strings.HasPrefix(failed, "tune2fs -T now") {
			continue // has a fallback
		}
		if err == nil {
			t.Errorf("k=%d (%s): no error", k, failed)
			continue
		}
		var je *journal.Error
		if errors.As(err, &je) && je.Committed {
			f.h.Run = inj.next
			out, rerr := f.h.Recover(context.Background())
			if rerr != nil || out == nil || out.RolledBack || len(fb.added) == 0 {
				t.Errorf("k=%d (%s): recover %+v %v, entries %v", k, failed, out, rerr, fb.added)
			}
			continue
		}
		// Every LV created is removed, and the old base mounted for the
		// merge is let go again.
		created, active := 0, false
		for _, m := range muts {
			switch {
			case strings.HasPrefix(m, "lvcreate"):
				created++
			case strings.HasPrefix(m, "lvremove --yes HostVG/"):
				created--
			case m == "lvchange --activate y --ignoreactivationskip HostVG/Base-1-0":
				active = true
			case m == "lvchange --activate n HostVG/Base-1-0":
				active = false
			}
		}
		if created != 0 || active || len(fb.added) != 0 {
			t.Errorf("k=%d (%s): left %d LVs, old base active %v, entries %v; ran:\n%s", k, failed, created, active, fb.added, strings.Join(muts, "\n"))
		}
		if _, err := os.Stat(filepath.Join(f.h.Root, JournalFile)); !os.IsNotExist(err) {
			t.Errorf("k=%d (%s): journal left behind", k, failed)
		}
	}
}

// An image already installed is refused, or with SkipInstalled (the
// timer's update) a success that changes nothing.
func TestUpdateFromOCIInstalled(t *testing.T) {
	dir := ociLayout(t, "Oci-3-0")
	for _, skip := range []bool{false, true} {
		f, _, req := ociUpdateFixture(t, dir, "Base-2-0")
		req.SkipInstalled = skip
		res, err := f.h.UpdateFromOCI(context.Background(), req)
		var r *ErrRefused
		switch {
		case skip && (err != nil || res.Installed != "Base-2-0"):
			t.Errorf("skip: %+v %v", res, err)
		case !skip && (!errors.As(err, &r) || !strings.Contains(err.Error(), "installed already as base Base-2-0")):
			t.Errorf("err = %v, want a refusal", err)
		}
		if m := f.rec.Mutations(); len(m) != 0 {
			t.Errorf("skip=%v ran %v", skip, m)
		}
	}
}

func TestCheckOCI(t *testing.T) {
	dir := ociLayout(t, "Oci-3-0")
	f, _, req := ociUpdateFixture(t, dir, "")
	res, err := f.h.CheckOCI(context.Background(), req.OCIRequest)
	if err != nil || !res.Available || res.NVR != "Oci-3-0" || res.Running != "Base-1-0" || !strings.HasPrefix(res.Digest, "sha256:") {
		t.Errorf("check %+v %v", res, err)
	}
	f, _, req = ociUpdateFixture(t, dir, "Base-1-0")
	res, err = f.h.CheckOCI(context.Background(), req.OCIRequest)
	if err != nil || res.Available || res.Installed != "Base-1-0" || res.RunningDigest != res.Digest {
		t.Errorf("check of the running image %+v %v", res, err)
	}
	if m := f.rec.Mutations(); len(m) != 0 {
		t.Errorf("check ran %v", m)
	}
	o, ok, err := f.h.RunningOrigin(context.Background())
	if err != nil || !ok || o.Ref != "oci:"+dir+":1.0" {
		t.Errorf("running origin %+v %v %v", o, ok, err)
	}
}

// The reboot asks systemctl to honour blocking inhibitors even though the
// timer's service is not interactive.
func TestRebootChecksInhibitors(t *testing.T) {
	f := newFixture(t, "running", 254, 5)
	if err := f.h.Reboot(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantLines(t, f.rec.Mutations(), []string{"systemctl reboot --check-inhibitors=yes"})
}

// A layer whose bytes do not match its digest fails the extraction: the
// new base is unmounted and removed, the old base let go, no journal left.
func TestUpdateFromOCICorruptLayerUndoes(t *testing.T) {
	dir := ociLayout(t, "Oci-3-0")
	blobs, _ := filepath.Glob(filepath.Join(dir, "blobs/sha256/*"))
	corrupted := false
	for _, b := range blobs {
		data, _ := os.ReadFile(b)
		if !bytes.HasPrefix(data, []byte("{")) { // the (gzip) layer, not JSON
			data[len(data)/2] ^= 0xff
			os.WriteFile(b, data, 0o644)
			corrupted = true
		}
	}
	if !corrupted {
		t.Fatal("no layer blob in the layout")
	}
	f, fb, req := ociUpdateFixture(t, dir, "")
	_, err := f.h.UpdateFromOCI(context.Background(), req)
	if err == nil {
		t.Fatal("a corrupt layer was installed")
	}
	m := f.rec.Mutations()
	mnt := filepath.Join(f.mnt, "Oci-3-0")
	for _, want := range []string{"umount " + mnt, "lvchange --activate n HostVG/Base-1-0", "lvremove --yes HostVG/Oci-3-0"} {
		if !slices.Contains(m, want) {
			t.Errorf("no %q after the failure; ran:\n%s", want, strings.Join(m, "\n"))
		}
	}
	if len(fb.added) != 0 {
		t.Errorf("boot entries %v", fb.added)
	}
	if _, err := os.Stat(filepath.Join(f.h.Root, JournalFile)); !os.IsNotExist(err) {
		t.Errorf("journal left behind: %v", err)
	}
	t.Logf("refused with: %v", err)
}

// TestUpdateFromOCICleansTheCache: a committed update keeps in the blob
// cache only the blobs of the image it installed.
func TestUpdateFromOCICleansTheCache(t *testing.T) {
	dir := ociLayout(t, "Oci-3-0")
	f, _, req := ociUpdateFixture(t, dir, "")
	cache, err := blobcache.Open(filepath.Join(t.TempDir(), "blobs"), 1<<30, f.h.Log)
	if err != nil {
		t.Fatal(err)
	}
	old := "a layer of an older image"
	oldDigest := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(old)))
	if err := cache.Put(oldDigest, strings.NewReader(old)); err != nil {
		t.Fatal(err)
	}
	req.Cache = cache
	if _, err := f.h.UpdateFromOCI(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if cache.Has(oldDigest) {
		t.Error("the older image's layer is still cached")
	}
	img, err := req.Registry.Resolve(context.Background(), req.Ref)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	for _, l := range img.Layers {
		if !cache.Has(l.Digest) {
			t.Errorf("the installed image's layer %s is not cached", l.Digest)
		}
	}
}
