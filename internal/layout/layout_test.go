package layout

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/imgbase/imgbase/internal/lvm"
	"github.com/imgbase/imgbase/internal/origin"
)

func load(t testing.TB, name string) *Tree {
	t.Helper()
	data, err := os.ReadFile("../host/testdata/" + name + ".json")
	if err != nil {
		t.Fatal(err)
	}
	lvs, err := lvm.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := Build(lvs)
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func TestBuild(t *testing.T) {
	tr := load(t, "running")
	if tr.VG != "HostVG" || tr.Pool == nil || tr.Pool.Name != "pool00" || tr.Init == nil || tr.Init.Name != "root" {
		t.Fatalf("tree %+v", tr)
	}
	var names []string
	for _, b := range tr.Bases {
		names = append(names, b.Name())
	}
	if fmt.Sprint(names) != "[Base-1-0 Base-2-0 Base-10-0]" {
		t.Errorf("bases in order %v", names)
	}
	if l := tr.LatestLayer(); l == nil || l.Name() != "Base-2-0+1" {
		t.Errorf("latest layer %v", l)
	}
	if b := tr.LatestBase(); b.Name() != "Base-10-0" || b.NextLayerName() != "Base-10-0+1" {
		t.Errorf("latest base %v", b.Name())
	}
	if n := tr.Base("Base-1-0").NextLayerName(); n != "Base-1-0+3" {
		t.Errorf("next layer %s", n)
	}
	if cur := tr.Current(254, 5); cur == nil || cur.Name() != "Base-1-0+1" || cur.Base.Name() != "Base-1-0" {
		t.Errorf("current %v", cur)
	}
	if tr.Current(254, 4) != nil || tr.Current(8, 1) != nil {
		t.Error("a non-layer device was taken for a layer")
	}
	if len(tr.Volumes) != 1 || tr.Volumes[0].Name != "var" {
		t.Errorf("volumes %v", tr.Volumes)
	}
}

func TestNotInitialized(t *testing.T) {
	if tr := load(t, "preinit"); tr.Initialized() || tr.LatestBase() != nil {
		t.Errorf("pre-init tree %+v", tr)
	}
}

func TestTwoTaggedVGsIsAnError(t *testing.T) {
	lvs := []lvm.LV{{VG: "a", Name: "x", VGTags: []string{lvm.TagVG}}, {VG: "b", Name: "y", VGTags: []string{lvm.TagVG}}}
	if _, err := Build(lvs); err == nil {
		t.Error("two managed VGs accepted")
	}
}

func TestOrphanLayer(t *testing.T) {
	lvs := []lvm.LV{{VG: "v", Name: "Gone-1-0+1", Attr: "Vwi-a-tz--", Tags: []string{lvm.TagLayer}, VGTags: []string{lvm.TagVG}}}
	tr, err := Build(lvs)
	if err != nil || len(tr.Orphans) != 1 || len(tr.Bases) != 0 {
		t.Fatalf("%v %+v", err, tr)
	}
	if got := tr.Text(""); got != "?? Gone-1-0+1 (its base is missing)\n" {
		t.Errorf("text %q", got)
	}
}

func TestJSON(t *testing.T) {
	tr := load(t, "running")
	data, err := json.Marshal(tr.JSON("Base-1-0+1"))
	if err != nil {
		t.Fatal(err)
	}
	var back JSONTree
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.Current != "Base-1-0+1" || len(back.Bases) != 3 || len(back.Bases[0].Layers) != 2 || !back.Bases[0].Layers[0].Current || back.Bases[0].Layers[1].Origin != "Base-1-0+1" {
		t.Errorf("json %s", data)
	}
	if back.Bases[0].Source != nil {
		t.Errorf("a base without source tags shows a source: %s", data)
	}
}

func TestJSONSource(t *testing.T) {
	tr := load(t, "running")
	want := origin.Origin{Ref: "docker://quay.io/org/node:4.5", Digest: "sha256:" + strings.Repeat("1f", 32)}
	tr.Bases[1].LV.Tags = append(tr.Bases[1].LV.Tags, origin.Tags(want)...)
	got := tr.JSON("").Bases[1].Source
	if got == nil || *got != want {
		t.Errorf("source %+v, want %+v", got, want)
	}
}

func TestUnits(t *testing.T) {
	for in, want := range map[string]string{"b": "3221225472", "k": "3145728K", "m": "3072M", "g": "3G", "G": "3G"} {
		u, err := ParseUnit(in)
		if err != nil || u.Format(3<<30) != want {
			t.Errorf("%s: %v %q", in, err, u.Format(3<<30))
		}
	}
	if _, err := ParseUnit("t"); err == nil {
		t.Error("unit t accepted")
	}
}

// report1000 renders an lvs JSON report of a VG with 100 bases of 9 layers each.
func report1000() []byte {
	type row map[string]string
	var rows []row
	common := func(r row) row {
		r["vg_name"], r["vg_tags"], r["vg_size"], r["vg_free"] = "HostVG", "imgbased:vg", "1099511627776", "0"
		r["lv_size"], r["data_percent"], r["lv_kernel_major"], r["lv_kernel_minor"] = "10737418240", "1.00", "-1", "-1"
		return r
	}
	rows = append(rows, common(row{"lv_name": "pool00", "lv_attr": "twi-aotz--", "lv_tags": "imgbased:pool", "chunk_size": "65536"}))
	for b := 0; b < 100; b++ {
		base := fmt.Sprintf("Node-4.%d-%d", b, b%7)
		rows = append(rows, common(row{"lv_name": base, "lv_attr": "Vri---tz-k", "lv_tags": "imgbased:base", "pool_lv": "pool00"}))
		for l := 1; l <= 9; l++ {
			rows = append(rows, common(row{"lv_name": fmt.Sprintf("%s+%d", base, l), "lv_attr": "Vwi-a-tz--", "lv_tags": "imgbased:layer", "pool_lv": "pool00", "origin": base, "lv_path": "/dev/HostVG/" + base}))
		}
	}
	data, _ := json.Marshal(map[string]any{"report": []any{map[string]any{"lv": rows}}})
	return data
}

// BenchmarkDecodeAndBuild1000 decodes an lvs report of 1,001 LVs and builds the tree.
func BenchmarkDecodeAndBuild1000(b *testing.B) {
	data := report1000()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		lvs, err := lvm.Decode(data)
		if err != nil {
			b.Fatal(err)
		}
		tr, err := Build(lvs)
		if err != nil || len(tr.Bases) != 100 || len(tr.Layers()) != 900 {
			b.Fatalf("%v %d", err, len(tr.Bases))
		}
	}
}
