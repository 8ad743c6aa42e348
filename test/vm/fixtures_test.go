//go:build vm

package vm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// lvsArgs is imgbase's own report command (internal/lvm.Client.Report).
var lvsArgs = []string{"lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o",
	"vg_name,lv_name,lv_path,lv_attr,lv_size,lv_tags,origin,pool_lv,data_percent,metadata_percent,lv_metadata_size,chunk_size,lv_kernel_major,lv_kernel_minor,vg_tags,vg_size,vg_free,thin_id"}

// TestRecordLVMFixtures regenerates internal/lvm/testdata/real-*.json, the
// decoder's fixtures, from real lvm2 in a guest:
// IMGBASE_FIXTURES=1 make check VM_RUN=TestRecordLVMFixtures
func TestRecordLVMFixtures(t *testing.T) {
	if os.Getenv("IMGBASE_FIXTURES") == "" {
		t.Skip("regenerates fixtures: set IMGBASE_FIXTURES=1")
	}
	g := Boot(t)
	dir := filepath.Join("..", "..", "internal", "lvm", "testdata")
	save := func(name string) {
		out := g.MustRun(lvsArgs...)
		if !strings.Contains(out, `"report"`) {
			t.Fatalf("not a JSON report: %s", out)
		}
		if err := os.WriteFile(filepath.Join(dir, "real-"+name+".json"), []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	save("preinit")
	g.MustRun("imgbase", "layout", "--init", "Base-1-0", "--from", "/")
	save("init")
	g.MustRun("imgbase", "base", "--add", "--size", "1200M", PayloadDir+"/v2.img")
	g.MustRun("imgbase", "layer", "--add")
	g.MustRun("imgbase", "layer", "--add", "Base-1-0")
	g.MustRun("imgbase", "base", "--add", "Base-2-0", "--size", "1G")
	save("many")
}
