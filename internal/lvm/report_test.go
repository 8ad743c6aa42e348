package lvm

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestDecodeFixtures(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.json")
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, f := range files {
		lvs, err := Decode(readFixture(t, filepath.Base(f)))
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if len(lvs) == 0 {
			t.Errorf("%s: no LVs", f)
		}
		for _, lv := range lvs {
			if lv.VG == "" || lv.Name == "" || len(lv.Attr) != 10 {
				t.Errorf("%s: incomplete %+v", f, lv)
			}
		}
	}
}

func TestDecodeFields(t *testing.T) {
	lvs, err := Decode(readFixture(t, "handmade-running.json"))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]LV{}
	for _, lv := range lvs {
		byName[lv.Name] = lv
	}
	pool := byName["pool00"]
	if !pool.IsThinPool() || pool.Size != 10<<30 || pool.DataPercent != 40 || pool.ChunkSize != 65536 || !pool.HasTag(TagPool) {
		t.Errorf("pool %+v", pool)
	}
	if free := pool.DataFree(); free != 6<<30 {
		t.Errorf("pool free %d", free)
	}
	base := byName["Base-1-0"]
	if !base.IsThin() || !base.ReadOnly() || base.Active() || !base.SkipActivation() || base.Major != -1 || base.Origin != "root" {
		t.Errorf("base %+v", base)
	}
	layer := byName["Base-1-0+1"]
	if layer.ReadOnly() || !layer.Active() || layer.SkipActivation() || layer.Major != 254 || layer.Minor != 5 || !layer.VGHasTag(TagVG) {
		t.Errorf("layer %+v", layer)
	}
	if layer.DevPath() != "/dev/HostVG/Base-1-0+1" || layer.FullName() != "HostVG/Base-1-0+1" {
		t.Errorf("paths %q %q", layer.DevPath(), layer.FullName())
	}
}

// thin_id is what maps thin_ls's device ids to LVs: a number for a thin
// volume, empty for the pool and other LVs (and for reports without it).
func TestDecodeThinID(t *testing.T) {
	lvs, err := Decode([]byte(`{"report":[{"lv":[{"lv_name":"a","thin_id":"7"},{"lv_name":"pool","thin_id":""},{"lv_name":"old"},{"lv_name":"b","thin_id":"16777215"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, lv := range lvs {
		got = append(got, lv.ThinID)
	}
	if want := []int64{7, -1, -1, 1<<24 - 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("thin ids %v, want %v", got, want)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, in := range []string{
		``, `{`, `{"report":[{"lv":[{"lv_name":""}]}]}`,
		`{"report":[{"lv":[{"lv_name":"a","lv_size":"12x"}]}]}`,
		`{"report":[{"lv":[{"lv_name":"a","data_percent":"101"}]}]}`,
		`{"report":[{"lv":[{"lv_name":"a","lv_kernel_major":"q"}]}]}`,
		`{"report":[{"lv":[{"lv_name":"a","thin_id":"x"}]}]}`,
		`{"report":[{"lv":[{"lv_name":"a","thin_id":"-1"}]}]}`,
		`{"report":[{"lv":[{"lv_name":"a","thin_id":"16777216"}]}]}`,
	} {
		if _, err := Decode([]byte(in)); err == nil {
			t.Errorf("Decode(%q) succeeded", in)
		}
	}
}

func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, p := range files {
		data, _ := os.ReadFile(p)
		f.Add(data)
	}
	f.Add([]byte(`{"report":[{"lv":[{"lv_name":"x","lv_attr":"V"}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		lvs, err := Decode(data)
		if err != nil {
			return
		}
		for _, lv := range lvs {
			// Accessors must not panic on short or odd attrs.
			_ = lv.IsThin() || lv.ReadOnly() || lv.Active() || lv.SkipActivation()
			if lv.DataPercent < 0 || lv.DataPercent > 100 || lv.Name == "" {
				t.Fatalf("decoded out-of-range %+v", lv)
			}
			_ = lv.DataFree()
		}
	})
}

// Fields as real lvm2 2.03 reports them (test/vm's TestRecordLVMFixtures).
func TestDecodeRealReport(t *testing.T) {
	lvs, err := Decode(readFixture(t, "real-many.json"))
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]LV{}
	for _, lv := range lvs {
		by[lv.Name] = lv
	}
	if len(by) != 8 {
		t.Fatalf("%d LVs", len(by))
	}
	pool := by["pool00"]
	if !pool.IsThinPool() || pool.ChunkSize != 65536 || pool.MetadataSize != 8<<20 || pool.DataPercent != 22.07 || pool.MetaPercent != 16.94 {
		t.Errorf("pool %+v", pool)
	}
	base := by["Base-1-0"]
	if !base.IsThin() || !base.ReadOnly() || !base.SkipActivation() || base.Active() || base.Origin != "root" || base.Major != -1 {
		t.Errorf("base %+v", base)
	}
	layer := by["Base-1-0+2"]
	if layer.ReadOnly() || layer.SkipActivation() || !layer.Active() || layer.Origin != "Base-1-0" || layer.Major != 253 || !layer.HasTag(TagLayer) || !layer.VGHasTag(TagVG) {
		t.Errorf("layer %+v", layer)
	}
	if root := by["root"]; !root.HasTag(TagInit) || !root.Active() {
		t.Errorf("root %+v", root)
	}
}
