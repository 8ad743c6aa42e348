//go:build vm

package vm

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

// cutPoint is where a power cut falls: in imgbase verb, when the shell
// condition cond (see PowerCutAt) holds, and delay later.
type cutPoint struct {
	name  string
	verb  string // "update" or "layer"
	cond  string
	delay time.Duration
	gc    bool // give the update an old base to collect (images_to_keep)
	// full: update --full, the whole image written into a new thin LV.
	// Without it the update takes the delta path (a snapshot of the
	// running base synced to the image), whose first run on a base that
	// recorded no manifest hashes that base's tree: minutes under TCG, so
	// only the points of the delta itself take it.
	full bool
}

// The old base the gc point's update collects: an empty base, older than
// the running one (images_to_keep is 2 by default).
const gcBase = "imgbase-test-0.9-1"

func cutPoints() []cutPoint {
	l2 := nvr2 + "+1"
	// The merge logs each conflict and each file the admin deleted, at
	// debug level, while it walks /etc.
	merging := InOutput(`msg=(conflict|"deleted by the admin")`)
	return []cutPoint{
		{name: "update/create-base/trying", verb: "update", full: true, cond: InJournal(JournalStep("create-base", "trying"))},
		{name: "update/write-image/start", verb: "update", full: true, cond: InJournal(JournalStep("write-image", "trying"))},
		{name: "update/write-image/mid-write", verb: "update", full: true, cond: InJournal(JournalStep("write-image", "trying")), delay: 8 * time.Second},
		{name: "update/delta/create-base-snapshot", verb: "update", cond: InJournal(JournalStep("create-base-snapshot", "trying"))},
		{name: "update/delta/mid-sync", verb: "update", cond: InJournal(JournalStep("sync-tree", "trying")) + " && " + InOutput(`msg=sync path=etc`)},
		{name: "update/create-layer/trying", verb: "update", full: true, cond: InJournal(JournalStep("create-layer", "trying"))},
		{name: "update/prepare-layer/merging-etc", verb: "update", full: true, cond: merging},
		{name: "update/committed", verb: "update", full: true, cond: InJournal(`"phase":"committed"`)},
		{name: "update/boot-entry/copying-kernel", verb: "update", full: true, cond: InJournal(JournalStep("boot-entry", "trying")) + " && " + Exists("/boot/"+l2)},
		{name: "update/gc/remove-base", verb: "update", full: true, cond: InJournal(JournalStep("remove-base", "trying")), gc: true},
		{name: "layer-add/after-lvcreate", verb: "layer", cond: InOutput(`msg=ran cmd="lvcreate --snapshot`)},
		{name: "layer-add/writing-entry", verb: "layer", cond: Exists("/boot/" + nvr1 + "+2")},
	}
}

// cutOutcome is one row of the report.
type cutOutcome struct {
	point, phase, recover, booted, lvs string
	ok                                 bool
}

// Issue #14 item 4, on one guest: the power is cut (QEMU killed) at points
// of `update` and `layer --add`; after each, the next boot has run
// imgbase-recover.service, no LV is left over, the previous default layer
// boots, `imgbase check` is clean and every file imgbase writes is whole.
// Then an update succeeds and its layer boots. Twelve cuts take about half
// an hour: only `make check-long` (IMGBASE_LONG=1) runs them; `make test`
// has the process kills of TestUpdate and TestDeltaUpdate.
func TestPowerCut(t *testing.T) {
	LongOnly(t, "the power cuts take about half an hour")
	Parallel(t)
	g := BootPowerCut(t)
	l1, l2 := FirstLayer, nvr2+"+1"
	g.WaitStarted()
	// The admin's changes: the merge has something to carry, a conflict
	// and a deletion.
	g.MustShell(`set -e
echo 'admin motd line' >>/etc/motd
echo 'admin=yes' >>/etc/imgbase-test.conf
echo 'added by the admin' >/etc/imgbase-admin.conf
rm /etc/issue.net
useradd -u 4321 -M -s /bin/sh imgtester
sync`)
	adminConf := g.MustRun("cat", "/etc/imgbase-test.conf")

	var rows []cutOutcome
	for _, p := range cutPoints() {
		var row cutOutcome
		ok := t.Run(p.name, func(t *testing.T) { row = powerCutAt(t, g, p, l1, adminConf) })
		row.point, row.ok = p.name, ok
		rows = append(rows, row)
		if !ok && !g.alive() {
			break
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-36s %-10s %-26s %-22s %-32s %s\n", "point", "journal", "imgbase-recover.service", "booted", "LVs after (vs before)", "result")
	for _, r := range rows {
		res := "pass"
		if !r.ok {
			res = "FAIL"
		}
		fmt.Fprintf(&b, "%-36s %-10s %-26s %-22s %-32s %s\n", r.point, r.phase, r.recover, r.booted, r.lvs, res)
	}
	t.Logf("power cuts:\n%s", b.String())

	// After the cuts, an update runs through and its layer boots.
	out := g.Imgbase("update", v2img)
	t.Logf("imgbase update after the power cuts:\n%s", out)
	if r := g.ImgbaseResult("check"); r.ExitCode != 0 {
		t.Errorf("imgbase check after the update: exit %d\n%s%s", r.ExitCode, r.Stdout, r.Stderr)
	}
	g.ExpectBooted(g.Reboot(), l2, "the trial boot of the update after the power cuts")
	if s := g.WaitStarted(); s != "active success" {
		t.Errorf("imgbase-boot-success.service on the trial boot: %q, want active success", s)
	}
	checkCarried(t, g, adminConf)
}

// alive says whether the guest's agent answers.
func (g *Guest) alive() bool {
	_, err := g.Ping(30 * time.Second)
	return err == nil
}

// powerCutAt cuts the power at p and checks what the next boot shows; it
// leaves the host as it found it (what a cut after the commit finished is
// removed again).
func powerCutAt(t *testing.T, g *Guest, p cutPoint, def, adminConf string) cutOutcome {
	var row cutOutcome
	if p.gc {
		g.Imgbase("base", "--add", gcBase, "--size", "64M")
	}
	before := g.LVs()
	var args []string
	switch p.verb {
	case "update":
		args = []string{"update", v2img}
		if p.full {
			args = []string{"update", "--full", v2img}
		}
	case "layer":
		args = []string{"layer", "--add"}
	}
	cut := g.PowerCutAt(p.cond, p.delay, args...)
	if !cut.Done {
		t.Fatalf("imgbase %s ended before the cut point:\n%s", strings.Join(args, " "), cut.Output)
	}
	t.Logf("journal at the cut:\n%s", cut.Journal)
	t.Logf("imgbase's output up to the cut (last lines):\n%s", lastLines(cut.Output, 12))
	row.phase = "none"
	if cut.Journal != "" {
		row.phase = "running"
		if cut.Committed() {
			row.phase = "committed"
		}
	}

	if s := g.WaitStarted(); s != "active success" && s != "inactive dead" {
		t.Logf("imgbase-boot-success.service: %s", s)
	}
	b := g.Booted()
	row.booted = strings.TrimPrefix(b.LV, vg+"/")
	g.ExpectBooted(b, def, "the boot after the power cut")

	// imgbase-recover.service runs when the cut left a journal (written
	// with fsync, so what the guest saw at the cut is on disk).
	rs := unitProps(g, "imgbase-recover.service", "ConditionResult", "Result", "ExecMainStatus")
	row.recover = fmt.Sprintf("cond=%s %s exit=%s", rs["ConditionResult"], rs["Result"], rs["ExecMainStatus"])
	if cut.Journal != "" {
		if rs["ConditionResult"] != "yes" || rs["Result"] != "success" || rs["ExecMainStatus"] != "0" {
			t.Errorf("the cut left a journal, but imgbase-recover.service at the next boot: %s", row.recover)
		}
	} else if rs["ConditionResult"] != "no" {
		t.Errorf("the cut left no journal, but imgbase-recover.service: %s", row.recover)
	}
	if _, err := g.ReadFile("/var/lib/imgbase/journal.json"); err == nil {
		t.Errorf("the journal is still there after the boot")
	}

	// No orphan: the LVs are the old ones, plus what the transaction made
	// and minus what it removed when it was past its commit.
	after := g.LVs()
	want := map[string]bool{}
	for n := range before {
		want[n] = true
	}
	var made []string
	if cut.Committed() {
		for _, s := range journalSteps(cut.Journal) {
			switch s.Kind {
			case "create-base", "create-base-snapshot", "create-layer":
				want[s.Args["lv"]] = true
				made = append(made, s.Args["lv"])
			case "remove-base":
				delete(want, s.Args["lv"])
			}
		}
	}
	row.lvs = lvDelta(before, after)
	if got, w := LVNames(after), sortedKeys(want); got != w {
		t.Errorf("after the cut the LVs are\n  %s\nwant\n  %s", got, w)
	}
	if d := strings.TrimSpace(g.Imgbase("boot", "--get-default")); d != def {
		t.Errorf("boot --get-default = %q, want %s", d, def)
	}
	if r := g.ImgbaseResult("check"); r.ExitCode != 0 {
		t.Errorf("imgbase check: exit %d\n%s%s", r.ExitCode, r.Stdout, r.Stderr)
	}
	checkFilesWhole(t, g, after, b.LV)

	// A finished transaction: its layer is on trial, and, for an update,
	// carries the admin's /etc, whole.
	var newLayer string
	for _, n := range made {
		if after[n].HasTag("imgbased:layer") {
			newLayer = n
		}
	}
	if newLayer != "" {
		if st := g.Imgbase("boot", "--status"); !strings.Contains(st, "on trial: "+newLayer) {
			t.Errorf("%s, finished by recover, is not on trial:\n%s", newLayer, st)
		}
		if p.verb == "update" {
			checkMergedEtc(t, g, newLayer, adminConf)
		}
	}

	// Back to the state before, for the next point.
	if cut.Committed() {
		for _, n := range made {
			if after[n].HasTag("imgbased:base") {
				g.Imgbase("base", "--remove", n)
			}
		}
		if p.verb == "layer" && newLayer != "" {
			g.Imgbase("layer", "--remove", newLayer)
		}
	}
	if p.gc {
		if _, ok := g.LVs()[gcBase]; ok {
			g.Imgbase("base", "--remove", gcBase)
		}
	}
	return row
}

// checkFilesWhole checks that every file imgbase writes is whole: grubenv
// (1024 bytes, readable by grub-editenv), the entries (each line a key and
// a value, their kernel and initramfs there and not empty), the GRUB menu,
// the boot status, every layer's fstab (a / line for the layer).
func checkFilesWhole(t *testing.T, g *Guest, lvs map[string]LV, running string) {
	t.Helper()
	bad := g.MustShell(`e=/boot/grub/grubenv
n=$(stat -c %s $e); [ "$n" = 1024 ] || echo "$e is $n bytes, not 1024"
grub-editenv $e list >/dev/null || echo "grub-editenv cannot read $e"
[ ! -e /boot/grub/imgbase.cfg ] || [ -s /boot/grub/imgbase.cfg ] || echo "/boot/grub/imgbase.cfg is empty"
for f in /boot/loader/entries/*.conf; do
  [ -s "$f" ] || { echo "$f is empty"; continue; }
  awk 'NF && $1 !~ /^#/ && NF < 2 { print FILENAME ": a line without a value: " $0 }' "$f"
  for k in linux initrd options; do grep -q "^$k " "$f" || echo "$f has no $k line"; done
  for p in $(awk '$1=="linux" || $1=="initrd" {print $2}' "$f"); do
    [ -s "/boot$p" ] || echo "$f: /boot$p is missing or empty"
  done
done
ls /boot/.*.tmp* /boot/loader/entries/.*.tmp* /boot/grub/.*.tmp* 2>/dev/null | sed 's/^/temporary file left: /'
true`)
	if bad != "" {
		t.Errorf("boot files:\n%s", bad)
	}
	for _, path := range []string{"/boot/loader/imgbase-status.json"} {
		if b, err := g.ReadFile(path); err == nil && !json.Valid(b) {
			t.Errorf("%s is not valid JSON:\n%s", path, b)
		}
	}
	for name, lv := range lvs {
		if !lv.HasTag("imgbased:layer") {
			continue
		}
		var fstab string
		if vg+"/"+name == running {
			fstab = g.MustRun("cat", "/etc/fstab")
		} else {
			fstab = layerShell(g, name, `cat "$M/etc/fstab"`)
		}
		if err := fstabRoot(fstab, name); err != nil {
			t.Errorf("the fstab of %s: %v\n%s", name, err, fstab)
		}
	}
}

// checkMergedEtc checks the /etc an update carried into layer: the admin's
// files, no file emptied by the cut that is not empty in the running /etc,
// and the migrate report valid JSON.
func checkMergedEtc(t *testing.T, g *Guest, layer, adminConf string) {
	t.Helper()
	got := layerShell(g, layer, `cat "$M/etc/imgbase-test.conf"; echo ===
grep -c '^imgtester:' "$M/etc/passwd" "$M/etc/shadow" "$M/etc/group"; echo ===
cd "$M/etc" && find . -type f -empty | sort >/run/imgbase-test-empty.new
cd /etc && find . -type f -empty | sort >/run/imgbase-test-empty.old
comm -23 /run/imgbase-test-empty.new /run/imgbase-test-empty.old; echo ===
cat "$M/var/lib/imgbase/migrate-report.json" 2>/dev/null || true`)
	parts := strings.SplitN(got, "===\n", 4)
	if len(parts) != 4 {
		t.Fatalf("cannot read the merged /etc of %s:\n%s", layer, got)
	}
	if parts[0] != adminConf {
		t.Errorf("%s: /etc/imgbase-test.conf is\n%s\nwant the admin's\n%s", layer, parts[0], adminConf)
	}
	for _, l := range strings.Split(strings.TrimSpace(parts[1]), "\n") {
		if !strings.HasSuffix(l, ":1") {
			t.Errorf("%s: user imgtester: %s", layer, l)
		}
	}
	if e := strings.TrimSpace(parts[2]); e != "" {
		t.Errorf("%s: files empty in the merged /etc that are not in the running one:\n%s", layer, e)
	}
	if r := strings.TrimSpace(parts[3]); r != "" && !json.Valid([]byte(r)) {
		t.Errorf("%s: migrate-report.json is not valid JSON:\n%s", layer, r)
	}
}

// layerShell runs script with $M the layer mounted read-only. The mount
// replays the filesystem's journal (no noload): what it shows is what the
// layer's first boot will see.
func layerShell(g *Guest, layer, script string) string {
	g.t.Helper()
	return g.MustShell(fmt.Sprintf(`set -e; M=/run/imgbase-test/ro/'%[1]s'; mkdir -p "$M"
o=ro; [ "$(blkid -o value -s TYPE /dev/%[2]s/'%[1]s')" = xfs ] && o=ro,nouuid
mount -o $o /dev/%[2]s/'%[1]s' "$M"; trap 'cd /; umount "$M"' EXIT
%[3]s`, layer, vg, script))
}

// unitProps reads properties of a systemd unit.
func unitProps(g *Guest, unit string, props ...string) map[string]string {
	g.t.Helper()
	args := []string{"systemctl", "show", unit}
	for _, p := range props {
		args = append(args, "-p", p)
	}
	out := map[string]string{}
	for _, l := range strings.Split(g.MustRun(args...), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			out[k] = v
		}
	}
	return out
}

type journalStep struct {
	Kind string            `json:"kind"`
	Args map[string]string `json:"args"`
}

// journalSteps reads the steps of a journal, before and after its commit.
func journalSteps(j string) []journalStep {
	var r struct {
		Steps       []journalStep `json:"steps"`
		AfterCommit []journalStep `json:"after_commit"`
	}
	if err := json.Unmarshal([]byte(j), &r); err != nil {
		return nil
	}
	return append(r.Steps, r.AfterCommit...)
}

func lvDelta(before, after map[string]LV) string {
	var d []string
	for n := range after {
		if _, ok := before[n]; !ok {
			d = append(d, "+"+n)
		}
	}
	for n := range before {
		if _, ok := after[n]; !ok {
			d = append(d, "-"+n)
		}
	}
	sort.Strings(d)
	if len(d) == 0 {
		return "same"
	}
	return strings.Join(d, " ")
}

func sortedKeys(m map[string]bool) string {
	var n []string
	for k := range m {
		n = append(n, k)
	}
	sort.Strings(n)
	return strings.Join(n, " ")
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
