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
	"regexp"
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

// benchTimed runs a shell line in the guest and returns its wall time
// measured inside the guest. Nothing else runs meanwhile: a sampler of
// /proc (a shell loop forking every 20 ms, ~70 ms of TCG CPU a fork) took
// a core from the command it timed. imgbase's peak memory is benchRSS's.
func benchTimed(t *testing.T, g *Guest, line string) time.Duration {
	t.Helper()
	script := fmt.Sprintf(`s=$(date +%%s%%N); %s; rc=$?; e=$(date +%%s%%N); echo "$((e-s))"; exit $rc`, line)
	ns, _ := strconv.ParseInt(strings.TrimSpace(benchLastLine(g.MustShell(script))), 10, 64)
	return time.Duration(ns)
}

// benchRSS is the peak resident memory of the last imgbase run, as it
// logged it when it ended (the kernel's ru_maxrss, its children not
// counted).
func benchRSS(t *testing.T, g *Guest) int64 {
	t.Helper()
	line := benchLastLine(g.MustShell(`grep -E 'msg="imgbase (finished|failed)"' /var/log/imgbased.log | tail -1`))
	m := regexp.MustCompile(`maxrss_kib=(\d+)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("the last run's log line has no maxrss_kib: %q", line)
	}
	kib, _ := strconv.ParseInt(m[1], 10, 64)
	return kib << 10
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

// EnvSkopeoDebs is the directory of skopeo's .debs (test/image/build.sh
// skopeo), for the pull's baseline.
const EnvSkopeoDebs = "IMGBASE_VM_SKOPEO_DEBS"

// benchPulled is what benchPull measured.
type benchPulled struct {
	imgbase, bare     time.Duration
	rss               int64 // imgbase's peak RSS in the pull
	downloaded, layer int64 // the re-pull of the moved tag; its new layer
}

// benchPull measures a base built from an image in the guest's registry
// (v2's tree as one uncompressed layer) against skopeo copying the same
// image to an OCI layout followed by tar extracting its layers into a
// fresh filesystem on a thin LV, each from a cold page cache and imgbase
// from an empty blob cache. In between, the tag moves by one small layer
// and a second base is pulled: what it downloads against that layer's
// size. The bases go again at once: the 6 GiB pool holds the bench's
// earlier bases and the registry's scratch LV too.
func benchPull(t *testing.T, g *Guest, size string) benchPulled {
	t.Helper()
	dir := os.Getenv(EnvSkopeoDebs)
	if dir == "" {
		t.Fatalf("%s must be set (test/image/build.sh skopeo)", EnvSkopeoDebs)
	}
	if r := g.ImgbaseResult("base", "--remove", "Bench-1-0"); r.ExitCode != 0 {
		t.Logf("base --remove Bench-1-0 (to make room): %s", r.Stderr)
	}
	startGuestRegistry(t, g)
	digest2, _, _ := pushedV2(t, g)
	const cold = "sync; echo 3 >/proc/sys/vm/drop_caches"
	version := func(lv string) string {
		return g.MustShell(`set -e
lvchange -ay -K ` + vg + `/` + lv + `; mkdir -p /mnt/bench; mount -o ro /dev/` + vg + `/` + lv + ` /mnt/bench
cat /mnt/bench/usr/share/imgbase-test/version; umount /mnt/bench; lvchange -an ` + vg + `/` + lv)
	}
	var p benchPulled
	g.MustShell("rm -rf /var/cache/imgbase/blobs; " + cold)
	p.imgbase = benchTimed(t, g, "imgbase base --add OciBench-1-0 --size "+size+" "+registryRef+" >/dev/null")
	p.rss = benchRSS(t, g)
	t.Logf("bench pull: imgbase base --add from the registry in %s, peak RSS %d KiB", p.imgbase, p.rss>>10)
	// Which SHA-256 verified the layers (internal/sha256x), as the run's
	// last log line says.
	last := benchLastLine(g.MustShell(`grep -E 'msg="imgbase (finished|failed)"' /var/log/imgbased.log | tail -1`))
	if m := regexp.MustCompile(`sha256="([^"]*)"`).FindStringSubmatch(last); m != nil {
		t.Logf("bench pull: layers hashed by %s", m[1])
	}
	if v := version("OciBench-1-0"); v != "2.0\n" {
		t.Errorf("the pulled base holds version %q", v)
	}
	g.Imgbase("base", "--remove", "OciBench-1-0")

	_, _, p.layer = pushV3(t, g, "OciBench-2-0")
	var res struct {
		Downloaded int64 `json:"downloaded"`
	}
	if err := json.Unmarshal([]byte(g.Imgbase("--json", "base", "--add", "--size", size, registryRef)), &res); err != nil {
		t.Fatalf("base --add --json of the moved tag: %v", err)
	}
	p.downloaded = res.Downloaded
	g.Imgbase("base", "--remove", "OciBench-2-0")
	g.MustShell("rm -rf /var/cache/imgbase/blobs; fstrim / || true")

	debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	g.MustRun("mkdir", "-p", "/scratch/skopeo-debs")
	for _, d := range debs {
		if err := g.CopyIn(d, "/scratch/skopeo-debs/"+filepath.Base(d), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	g.MustShell(`set -e; for d in /scratch/skopeo-debs/*.deb; do dpkg-deb -x $d /scratch/skopeo; done`)
	g.MustShell(cold)
	// The image imgbase pulled, by digest: the tag has moved since.
	p.bare = benchTimed(t, g, `(set -e
lvcreate -q --thin --virtualsize `+size+` --name ocibare `+vg+`/`+benchPool+` >/dev/null
mkfs.ext4 -q -E nodiscard -O metadata_csum_seed /dev/`+vg+`/ocibare
mkdir -p /mnt/ocibare && mount /dev/`+vg+`/ocibare /mnt/ocibare
LD_LIBRARY_PATH=/scratch/skopeo/usr/lib/x86_64-linux-gnu /scratch/skopeo/usr/bin/skopeo --insecure-policy copy -q \
	--src-tls-verify=false --dest-oci-accept-uncompressed-layers docker://`+registryRepo+`@`+digest2+` oci:/scratch/skopeo-oci:2.0
m=$(grep -o 'sha256:[0-9a-f]\{64\}' /scratch/skopeo-oci/index.json | head -1)
for l in $(sed 's/.*"layers":\[//' /scratch/skopeo-oci/blobs/sha256/${m#sha256:} | grep -o 'sha256:[0-9a-f]\{64\}'); do
	tar --numeric-owner --xattrs --xattrs-include='*' -xf /scratch/skopeo-oci/blobs/sha256/${l#sha256:} -C /mnt/ocibare
done
umount /mnt/ocibare)`)
	if v := version("ocibare"); v != "2.0\n" {
		t.Errorf("the baseline's tree holds version %q", v)
	}
	g.MustShell("lvremove -q -y " + vg + "/ocibare >/dev/null; rm -rf /scratch/skopeo-oci")
	return p
}

// benchDelta is one delta update of the bench's series.
type benchDelta struct {
	what            string
	took            time.Duration
	changed, growth int64 // bytes of changed files written; pool data growth
}

type benchRow struct {
	what          string
	imgbase, bare time.Duration
	// limit is the target ratio imgbase/bare, 0 for a row without one.
	limit   float64
	comment string
}

// String is the row as a tab-separated table line.
func (r benchRow) String() string {
	ratio := r.imgbase.Seconds() / r.bare.Seconds()
	target := r.comment
	if r.limit > 0 {
		target = fmt.Sprintf("≤ %.1f× (%s) %s", r.limit, r.comment, benchVerdict(ratio <= r.limit))
	}
	return fmt.Sprintf("%s\t%.2fs\t%.2fs\t%.2f×\t%s", r.what, r.imgbase.Seconds(), r.bare.Seconds(), ratio, target)
}

// benchAdd adds a row and logs it at once: a bench cut short (a timeout,
// a failure) still shows what it measured.
func benchAdd(t *testing.T, rows []benchRow, r benchRow) []benchRow {
	t.Helper()
	t.Logf("bench row: %s", strings.ReplaceAll(r.String(), "\t", " | "))
	return append(rows, r)
}

// benchVerdict is the word a reader (or a script) looks for at the end of
// a row that has a target.
func benchVerdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// benchRan is one line of imgbase's --debug trace: a process it started.
var benchRan = regexp.MustCompile(`msg=ran cmd="?([^" ]+)[^\n]*duration=([0-9.]+m?s)`)

// benchProcs counts the processes a --debug trace shows, per program.
func benchProcs(trace string) (int, string) {
	counts := map[string]int{}
	var order []string
	n := 0
	for _, m := range benchRan.FindAllStringSubmatch(trace, -1) {
		prog := filepath.Base(m[1])
		if counts[prog] == 0 {
			order = append(order, prog)
		}
		counts[prog]++
		n++
	}
	parts := make([]string, len(order))
	for i, p := range order {
		parts[i] = fmt.Sprintf("%s %d", p, counts[p])
	}
	return n, strings.Join(parts, ", ")
}

// benchLVM counts the lvm2 processes among a trace's.
func benchLVM(trace string) int {
	n := 0
	for _, m := range benchRan.FindAllStringSubmatch(trace, -1) {
		switch filepath.Base(m[1]) {
		case "lvs", "vgs", "pvs", "lvcreate", "lvchange", "lvremove", "lvrename", "lvextend", "vgchange", "lvm":
			n++
		}
	}
	return n
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
	// Each imgbase run keeps its --debug trace: every process it starts,
	// with its duration.
	traces := map[string]string{}
	traced := func(verb, args string) string {
		return "imgbase --debug " + args + " 2>/tmp/trace-" + verb
	}
	keep := func(verb string) {
		traces[verb] = g.MustShell("cat /tmp/trace-" + verb)
		t.Logf("--debug %s:\n%s", verb, traces[verb])
	}

	// The host's root was made without metadata_csum_seed, as most
	// installed hosts' are (test/image/image.sh).
	t.Logf("root filesystem features: %s", g.MustShell("dumpe2fs -h /dev/"+vg+"/root 2>/dev/null | grep -i 'features'"))
	g.MustShell(traced("init", "layout --init Base-1-0 --from /"))
	keep("init")
	// Both copies read the image from a warm page cache.
	g.MustShell("cat " + benchImage + " >/dev/null")
	var rows []benchRow

	// A wrong --sha256 on a raw image is found in the one read that
	// writes it; the base is undone and the system is as before.
	before := g.Snapshot()
	wrong := benchTimed(t, g, "! imgbase base --add Wrong-1-0 --size "+size+" --sha256 "+strings.Repeat("0", 64)+" "+benchImage+" 2>/tmp/wrong.err")
	t.Logf("wrong --sha256: %s", g.MustShell("cat /tmp/wrong.err"))
	if after := g.Snapshot(); after != before {
		t.Errorf("a wrong --sha256 changed the system:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	g.MustShell("cat " + benchImage + " >/dev/null")

	// Base add vs dd conv=sparse onto a fresh thin LV.
	g.MustRun("lvcreate", "--thin", "--virtualsize", size, "--name", "ddtest", vg+"/"+benchPool)
	bare := benchTimed(t, g, "dd if="+benchImage+" of=/dev/"+vg+"/ddtest bs=4M conv=sparse,fsync status=none")
	ddUsed := benchPoolUsed(t, g, "ddtest")
	g.MustRun("lvremove", "--yes", vg+"/ddtest")
	g.MustShell("cat " + benchImage + " >/dev/null")
	took := benchTimed(t, g, traced("base", "base --add Bench-1-0 --size "+size+" "+benchImage))
	fullAdd := took
	rssAdd := benchRSS(t, g)
	keep("base")
	g.MustRun("lvchange", "--activate", "y", "--ignoreactivationskip", vg+"/Bench-1-0")
	baseUsed := benchPoolUsed(t, g, "Bench-1-0")
	g.MustRun("lvchange", "--activate", "n", vg+"/Bench-1-0")
	rows = benchAdd(t, rows, benchRow{"base --add (1000 MiB ext4 image)", took, bare, 0, "baseline: dd conv=sparse (buffered)"})
	// imgbase reads and writes with O_DIRECT; dd can too, which is the
	// honest comparison. The LV's creation counts on both sides.
	g.MustShell("cat " + benchImage + " >/dev/null")
	direct := benchTimed(t, g, "lvcreate --thin --virtualsize "+size+" --name ddtest "+vg+"/"+benchPool+" >/dev/null && dd if="+benchImage+" of=/dev/"+vg+"/ddtest bs=4M conv=sparse,fsync iflag=direct oflag=direct status=none")
	g.MustRun("lvremove", "--yes", vg+"/ddtest")
	rows = benchAdd(t, rows, benchRow{"base --add", took, direct, 1.3, "baseline: lvcreate + dd iflag=direct oflag=direct conv=sparse"})

	// Layer add on the base layout --init made of the root, vs a bare
	// snapshot of that same base.
	took = benchTimed(t, g, traced("layer", "layer --add Base-1-0"))
	rssLayer := benchRSS(t, g)
	keep("layer")
	bare = benchTimed(t, g, "lvcreate --snapshot --setactivationskip n --activate y --name baresnap "+vg+"/Base-1-0 >/dev/null")
	g.MustRun("lvremove", "--yes", vg+"/baresnap")
	rows = benchAdd(t, rows, benchRow{"layer --add (base of the root)", took, bare, 1.6, "baseline: lvcreate --snapshot --setactivationskip n --activate y"})
	old := benchTimed(t, g, "lvcreate --snapshot --setactivationskip n --activate y --name baresnap "+vg+"/Base-1-0 >/dev/null && e2fsck -fy /dev/"+vg+"/baresnap >/dev/null; tune2fs -U random /dev/"+vg+"/baresnap >/dev/null")
	g.MustRun("lvremove", "--yes", vg+"/baresnap")
	rows = benchAdd(t, rows, benchRow{"layer --add", took, old, 0, "baseline: lvcreate -s, e2fsck -fy, tune2fs -U random"})
	// A layer of the base written from the image.
	took2 := benchTimed(t, g, traced("layer2", "layer --add Bench-1-0"))
	keep("layer2")
	bare = benchTimed(t, g, "lvcreate --snapshot --setactivationskip n --activate y --name baresnap "+vg+"/Bench-1-0 >/dev/null")
	g.MustRun("lvremove", "--yes", vg+"/baresnap")
	rows = benchAdd(t, rows, benchRow{"layer --add (base of an image)", took2, bare, 1.6, "baseline: lvcreate --snapshot --setactivationskip n --activate y"})

	// Update end to end vs the raw copy.
	g.MustShell("cat " + benchImage + " >/dev/null")
	took = benchTimed(t, g, traced("update", "update --full --size "+size+" "+benchImage))
	rssUpdate := benchRSS(t, g)
	keep("update")
	g.MustRun("lvcreate", "--thin", "--virtualsize", size, "--name", "ddtest2", vg+"/"+benchPool)
	g.MustShell("cat " + benchImage + " >/dev/null")
	bare = benchTimed(t, g, "dd if="+benchImage+" of=/dev/"+vg+"/ddtest2 bs=4M conv=sparse,fsync status=none")
	g.MustRun("lvremove", "--yes", vg+"/ddtest2")
	rows = benchAdd(t, rows, benchRow{"update (base, layer, /etc merge, boot entry)", took, bare, 0, "baseline: dd conv=sparse (buffered)"})
	rows = benchAdd(t, rows, benchRow{"update", took, direct, 1.6, "baseline: lvcreate + dd iflag=direct oflag=direct conv=sparse"})

	// A delta update (#12): v1 from the v2 base the update above wrote,
	// against that full write. Every base is kept, so that the pool's
	// growth is the delta's alone.
	g.MustShell("mkdir -p /etc/imgbased.conf.d && printf '[update]\nimages_to_keep = 9\n' >/etc/imgbased.conf.d/keep.conf")
	v1size := size
	if fi, err := os.Stat(filepath.Join(filepath.Dir(payload), "files", "v1.img")); err == nil && fi.Size() > st.Size() {
		v1size = fmt.Sprintf("%db", fi.Size())
	}
	// Five successive delta updates, v2 → v1 → v2 → v1 → v2 → v1, each
	// from the base the one before made. The first is compared with the
	// full write of the same size above; the pool after all five with one
	// full image (the base written by base --add).
	poolStart := benchPoolUsed(t, g, benchPool)
	var deltas []benchDelta
	from := nvr2
	for i := range 5 {
		img, sz := "v1.img", v1size
		if i%2 == 1 {
			img, sz = "v2.img", size
		}
		name := fmt.Sprintf("Bench-%d-0", 3+i)
		g.MustShell("cat " + PayloadDir + "/" + img + " >/dev/null")
		before := benchPoolUsed(t, g, benchPool)
		verb := fmt.Sprintf("delta%d", i+1)
		tookDelta := benchTimed(t, g, traced(verb, "--json update --from-base "+from+" --nvr "+name+" --size "+sz+" "+PayloadDir+"/"+img)+" >/run/imgbase-bench-delta.json")
		if i < 2 {
			keep(verb)
		}
		d := benchDelta{what: fmt.Sprintf("%s from %s (%s)", name, from, img), took: tookDelta, growth: benchPoolUsed(t, g, benchPool) - before}
		var res struct {
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
		if err := json.Unmarshal([]byte(g.MustRun("cat", "/run/imgbase-bench-delta.json")), &res); err != nil {
			t.Fatalf("the delta update's --json output: %v", err)
		}
		if !res.Base.Way.Delta {
			t.Errorf("the bench's delta update %s took a full write: %s", name, res.Base.Way.Why)
		}
		d.changed = res.Base.Way.Sync.BytesWritten
		t.Logf("bench delta %d: %s in %s, %d bytes of changed files written, pool +%d bytes", i+1, d.what, d.took, d.changed, d.growth)
		deltas = append(deltas, d)
		from = name
	}
	fiveGrowth := benchPoolUsed(t, g, benchPool) - poolStart
	// The same image as the full base --add above (v2.img), installed by
	// delta from the last v1 base: the delta against the full write of
	// the same image, base for base.
	g.MustShell("cat " + benchImage + " >/dev/null")
	baseDelta := benchTimed(t, g, traced("basedelta", "--json base --add Bench-8-0 --from-base "+from+" --size "+size+" "+benchImage)+" >/run/imgbase-bench-basedelta.json")
	keep("basedelta")
	var added struct {
		Way struct {
			Delta  bool   `json:"delta"`
			Hashes string `json:"hashes"`
		} `json:"way"`
	}
	if err := json.Unmarshal([]byte(g.MustRun("cat", "/run/imgbase-bench-basedelta.json")), &added); err != nil {
		t.Fatalf("the delta base --add's --json output: %v", err)
	}
	if !added.Way.Delta {
		t.Errorf("the bench's delta base --add took a full write")
	}
	t.Logf("bench delta base --add: Bench-8-0 from %s (v2.img) in %s, hashes from %s", from, baseDelta, added.Way.Hashes)

	pull := benchPull(t, g, size)
	rows = benchAdd(t, rows, benchRow{"base --add docker:// (v2 from the guest's registry)", pull.imgbase, pull.bare, 1.0,
		"baseline: lvcreate + mkfs.ext4 + skopeo copy to oci: + tar -x of its layers"})
	rows = benchAdd(t, rows, benchRow{"delta update v2 → v1", deltas[0].took, took, 0.4, "baseline: the full update above"})
	rows = benchAdd(t, rows, benchRow{"delta base --add v1 → v2", baseDelta, fullAdd, 0.4, "baseline: base --add of the same image by a full write, above"})

	w := tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintf(w, "\noperation\timgbase\tbaseline\tratio\ttarget\n")
	for _, r := range rows {
		fmt.Fprintln(w, r)
	}
	fmt.Fprintf(w, "wrong --sha256 refused, base undone\t%.2fs\t\t\t(one read: written, digested, removed)\n", wrong.Seconds())
	pool := float64(baseUsed) / float64(scan.NonZero)
	fmt.Fprintf(w, "pool data, imgbase base\t%d MiB\t%d MiB (dd)\t%.3f× of the image's non-zero 4 KiB blocks (%d MiB)\t≤ 1.05× %s\n",
		baseUsed>>20, ddUsed>>20, pool, scan.NonZero>>20, benchVerdict(pool <= 1.05))
	peak := max(rssAdd, rssLayer, rssUpdate, pull.rss)
	fmt.Fprintf(w, "peak RSS (ru_maxrss, logged)\tbase --add %d MB\tlayer --add %d MB, update %d MB\tbase --add docker:// %d MB\t≤ 40 MB %s\n",
		rssAdd>>20, rssLayer>>20, rssUpdate>>20, pull.rss>>20, benchVerdict(peak <= 40<<20))
	// Processes each verb starts, read from its --debug trace.
	for _, v := range []struct{ verb, what string }{
		{"init", "layout --init"}, {"base", "base --add"}, {"layer", "layer --add (base of the root)"},
		{"layer2", "layer --add (base of an image)"}, {"update", "update"},
	} {
		n, by := benchProcs(traces[v.verb])
		fmt.Fprintf(w, "processes, %s\t%d\t%d lvm2\t\t%s\n", v.what, n, benchLVM(traces[v.verb]), by)
	}
	// Each delta's pool growth beyond the bytes of its changed files is
	// the filesystem's own overhead (journal, bitmaps, inode tables,
	// directories) plus the new layer and its /etc.
	for i, d := range deltas {
		limit := int64(1.1*float64(d.changed)) + 64<<20
		fmt.Fprintf(w, "delta %d: %s\t%.2fs\t%.1f MiB changed, pool +%.1f MiB (overhead %.1f MiB)\t%.2f×\t≤ 1.1× the changed bytes + 64 MiB (%.1f MiB) %s\n",
			i+1, d.what, d.took.Seconds(), float64(d.changed)/(1<<20), float64(d.growth)/(1<<20), float64(d.growth-d.changed)/(1<<20),
			float64(d.growth)/float64(max(d.changed, 1)), float64(limit)/(1<<20), benchVerdict(d.growth <= limit))
	}
	ratio := float64(pull.downloaded) / float64(max(pull.layer, 1))
	fmt.Fprintf(w, "download, tag moved by one layer\t%d bytes\t%d bytes (the new layer)\t%.3f×\t≤ 1.05× %s\n",
		pull.downloaded, pull.layer, ratio, benchVerdict(ratio <= 1.05))
	held := float64(baseUsed+fiveGrowth) / float64(baseUsed)
	fmt.Fprintf(w, "pool, one full image + five delta updates\t%d MiB\t%d MiB (one full image)\t%.2f×\t≤ 1.5× %s\n",
		(baseUsed+fiveGrowth)>>20, baseUsed>>20, held, benchVerdict(held <= 1.5))
	w.Flush()
}
