//go:build vm

package vm

// TestBench measures imgbase against the bare tools on real LVM in a QEMU
// guest (make bench). It prints a table and asserts nothing about time: the
// figures are evidence, not pass/fail criteria.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/imgbase/imgbase/internal/image/sparse"
)

const (
	benchPool  = "pool00"
	benchImage = PayloadDir + "/v2.img"
	benchFile  = "v2.img"
)

// timed runs a shell line in the guest and returns its wall time measured
// inside the guest and, for imgbase, the peak RSS sampled from VmHWM.
func benchTimed(t *testing.T, g *Guest, line string, rss bool) (time.Duration, int64) {
	t.Helper()
	// VmHWM only grows; the last sample before exit is the peak up to
	// then (sampled every 20 ms).
	script := fmt.Sprintf(`s=$(date +%%s%%N); %s & pid=$!; peak=0
while kill -0 $pid 2>/dev/null; do
  v=$(awk '/VmHWM/{print $2}' /proc/$pid/status 2>/dev/null); [ -n "$v" ] && [ "$v" -gt "$peak" ] && peak=$v
  sleep 0.02
done
wait $pid; rc=$?; e=$(date +%%s%%N); echo "$((e-s)) $peak"; exit $rc`, line)
	if !rss {
		script = fmt.Sprintf(`s=$(date +%%s%%N); %s; rc=$?; e=$(date +%%s%%N); echo "$((e-s)) 0"; exit $rc`, line)
	}
	out := strings.Fields(benchLastLine(g.MustShell(script)))
	ns, _ := strconv.ParseInt(out[0], 10, 64)
	kb, _ := strconv.ParseInt(out[1], 10, 64)
	return time.Duration(ns), kb << 10
}

func benchLastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// poolUsed is the pool data an LV holds: its size times data_percent.
func benchPoolUsed(t *testing.T, g *Guest, lv string) int64 {
	t.Helper()
	out := strings.Fields(g.MustRun("lvs", "--noheadings", "--units", "b", "--nosuffix", "-o", "lv_size,data_percent", vg+"/"+lv))
	size, _ := strconv.ParseFloat(out[0], 64)
	pct, _ := strconv.ParseFloat(out[1], 64)
	return int64(size * pct / 100)
}

func metOrMissed(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

type benchRow struct {
	what            string
	imgbase, bare   time.Duration
	target, comment string
}

func TestBench(t *testing.T) {
	if os.Getenv("IMGBASE_BENCH") == "" {
		t.Skip("a benchmark: run it with make bench")
	}
	g := Boot(t)
	// The image's non-zero data, measured on the host from the same file.
	payload := os.Getenv(EnvPayload)
	if payload == "" {
		t.Skip("run with make bench")
	}
	f, err := os.Open(filepath.Join(filepath.Dir(payload), "files", benchFile))
	if err != nil {
		t.Fatal(err)
	}
	st, _ := f.Stat()
	scan, err := sparse.Scan(t.Context(), f, st.Size(), 64<<10, nil)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	size := fmt.Sprintf("%db", st.Size())

	g.MustRun("imgbase", "layout", "--init", "Base-1-0", "--from", "/")
	// Both copies read the image from a warm page cache.
	g.MustShell("cat " + benchImage + " >/dev/null")
	var rows []benchRow

	// Base add vs dd conv=sparse onto a fresh thin LV.
	g.MustRun("lvcreate", "--thin", "--virtualsize", size, "--name", "ddtest", vg+"/"+benchPool)
	bare, _ := benchTimed(t, g, "dd if="+benchImage+" of=/dev/"+vg+"/ddtest bs=4M conv=sparse,fsync status=none", false)
	ddUsed := benchPoolUsed(t, g, "ddtest")
	g.MustRun("lvremove", "--yes", vg+"/ddtest")
	g.MustShell("cat " + benchImage + " >/dev/null")
	took, rssAdd := benchTimed(t, g, "imgbase base --add Bench-1-0 --size "+size+" "+benchImage, true)
	g.MustRun("lvchange", "--activate", "y", "--ignoreactivationskip", vg+"/Bench-1-0")
	baseUsed := benchPoolUsed(t, g, "Bench-1-0")
	g.MustRun("lvchange", "--activate", "n", vg+"/Bench-1-0")
	rows = append(rows, benchRow{"base --add (1000 MiB ext4 image)", took, bare, "≤ 1.2× dd conv=sparse", ""})
	// imgbase reads and writes with O_DIRECT; dd can too, which is the
	// stricter comparison.
	g.MustRun("lvcreate", "--thin", "--virtualsize", size, "--name", "ddtest", vg+"/"+benchPool)
	direct, _ := benchTimed(t, g, "dd if="+benchImage+" of=/dev/"+vg+"/ddtest bs=4M conv=sparse,fsync iflag=direct oflag=direct status=none", false)
	g.MustRun("lvremove", "--yes", vg+"/ddtest")
	rows = append(rows, benchRow{"base --add", took, direct, "", "baseline: dd with iflag=direct oflag=direct"})

	// Layer add vs a bare snapshot and UUID regeneration.
	took, rssLayer := benchTimed(t, g, "imgbase layer --add Bench-1-0", true)
	bare, _ = benchTimed(t, g, "lvcreate --snapshot --setactivationskip n --activate y --name baresnap "+vg+"/Bench-1-0 >/dev/null && e2fsck -fy /dev/"+vg+"/baresnap >/dev/null; tune2fs -U random /dev/"+vg+"/baresnap >/dev/null", false)
	rows = append(rows, benchRow{"layer --add", took, bare, "", "bare: lvcreate -s, e2fsck -fy, tune2fs -U random"})
	g.MustRun("lvremove", "--yes", vg+"/baresnap")

	// Update end to end vs the raw copy.
	g.MustShell("cat " + benchImage + " >/dev/null")
	took, rssUpdate := benchTimed(t, g, "imgbase update --full --size "+size+" "+benchImage, true)
	g.MustRun("lvcreate", "--thin", "--virtualsize", size, "--name", "ddtest2", vg+"/"+benchPool)
	g.MustShell("cat " + benchImage + " >/dev/null")
	bare, _ = benchTimed(t, g, "dd if="+benchImage+" of=/dev/"+vg+"/ddtest2 bs=4M conv=sparse,fsync status=none", false)
	g.MustRun("lvremove", "--yes", vg+"/ddtest2")
	rows = append(rows, benchRow{"update (base, layer, /etc merge, boot entry)", took, bare, "≤ 1.3× the raw copy", ""})
	rows = append(rows, benchRow{"update", took, direct, "", "baseline: dd with iflag=direct oflag=direct"})

	// A delta update (#12): v1 from the v2 base the update above wrote,
	// against that full write. Every base is kept, so that the pool's
	// growth is the delta's alone.
	g.MustShell("mkdir -p /etc/imgbased.conf.d && printf '[update]\nimages_to_keep = 9\n' >/etc/imgbased.conf.d/keep.conf")
	v1size := size
	if fi, err := os.Stat(filepath.Join(filepath.Dir(payload), "files", "v1.img")); err == nil && fi.Size() > st.Size() {
		v1size = fmt.Sprintf("%db", fi.Size())
	}
	g.MustShell("cat " + PayloadDir + "/v1.img >/dev/null")
	poolBefore := benchPoolUsed(t, g, benchPool)
	tookDelta, _ := benchTimed(t, g, "imgbase --json update --from-base "+nvr2+" --nvr Bench-3-0 --size "+v1size+" "+PayloadDir+"/v1.img >/run/imgbase-bench-delta.json", false)
	growth := benchPoolUsed(t, g, benchPool) - poolBefore
	var delta struct {
		Base struct {
			Way struct {
				Delta bool   `json:"delta"`
				Why   string `json:"why"`
				Sync  struct {
					BytesWritten int64 `json:"bytes_written"`
				} `json:"sync"`
			} `json:"way"`
		} `json:"base"`
	}
	if err := json.Unmarshal([]byte(g.MustRun("cat", "/run/imgbase-bench-delta.json")), &delta); err != nil {
		t.Fatalf("the delta update's --json output: %v", err)
	}
	if !delta.Base.Way.Delta {
		t.Errorf("the bench's delta update took a full write: %s", delta.Base.Way.Why)
	}
	changed := delta.Base.Way.Sync.BytesWritten
	rows = append(rows, benchRow{"delta update v2 → v1", tookDelta, took, "≤ 0.4× the full update " + metOrMissed(tookDelta.Seconds() <= 0.4*took.Seconds()),
		"baseline: the full update above"})

	w := tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintf(w, "\noperation\timgbase\tbaseline\tratio\ttarget\n")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%.1fs\t%.1fs\t%.2f×\t%s %s\n", r.what, r.imgbase.Seconds(), r.bare.Seconds(),
			r.imgbase.Seconds()/r.bare.Seconds(), r.target, r.comment)
	}
	fmt.Fprintf(w, "pool data, imgbase base\t%d MiB\t%d MiB (dd)\t%.3f× of the image's non-zero 4 KiB blocks (%d MiB)\t≤ 1.05×\n",
		baseUsed>>20, ddUsed>>20, float64(baseUsed)/float64(scan.NonZero), scan.NonZero>>20)
	fmt.Fprintf(w, "peak RSS (VmHWM, sampled)\tbase --add %d MB\tlayer --add %d MB\tupdate %d MB\t≤ 40 MB\n",
		rssAdd>>20, rssLayer>>20, rssUpdate>>20)
	limit := int64(1.1*float64(changed)) + 64<<20
	fmt.Fprintf(w, "pool growth, delta update\t%.1f MiB\t%.1f MiB of changed files\t%.2f×\t≤ 1.1× the changed bytes + 64 MiB (%.1f MiB) %s\n",
		float64(growth)/(1<<20), float64(changed)/(1<<20), float64(growth)/float64(max(changed, 1)), float64(limit)/(1<<20), metOrMissed(growth <= limit))
	w.Flush()
}
