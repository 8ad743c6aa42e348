//go:build vm

package vm

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Issue #5 on one guest: a v1 → v2 update refused on a nearly full pool,
// killed (SIGKILL) at several journal steps and recovered, and finally
// finished, then booted, with the admin's /etc changes carried over.
// Boots: the first, into the first layer, after the recovered kills (the
// old layer still boots: make check-long only, with a kill at each step
// rather than one), into v2's layer, after a volume's creation (make
// check-long only).
func TestUpdate(t *testing.T) {
	Parallel(t)
	g := BootLayered(t)
	l1, v2layer := FirstLayer, nvr2+"+1"
	g.WaitStarted()

	t.Run("PoolFull", func(t *testing.T) { poolFull(t, g) })

	// The admin's changes on the running layer.
	g.MustShell(`set -e
echo 'admin motd line' >>/etc/motd
echo 'admin=yes' >>/etc/imgbase-test.conf
echo 'added by the admin' >/etc/imgbase-admin.conf
rm /etc/issue.net
useradd -u 4321 -M -s /bin/sh imgtester
`)
	adminConf := g.MustRun("cat", "/etc/imgbase-test.conf")

	// Killed before the commit: recover undoes everything. make test
	// kills at one step, halfway through the image's write; make
	// check-long at each.
	for _, at := range []struct {
		name, re string
		long     bool
	}{
		{"create-base", JournalStep("create-base", "trying"), true},
		{"write-image", JournalStep("write-image", "trying"), false},
		{"create-layer", JournalStep("create-layer", "trying"), true},
		{"prepare-layer", JournalStep("prepare-layer", "trying"), true},
	} {
		t.Run("KillAt/"+at.name, func(t *testing.T) {
			if at.long {
				LongOnly(t, "one kill of the four is enough for make test")
			}
			before := LVNames(g.LVs())
			killed, out := g.KillAt(at.re, "--debug", "update", "--full", v2img)
			t.Logf("%s", out)
			if !killed {
				t.Fatalf("imgbase update ended before the journal showed %s", at.name)
			}
			rec := g.ImgbaseResult("--debug", "recover")
			t.Logf("imgbase recover: exit %d\n%s%s", rec.ExitCode, rec.Stdout, rec.Stderr)
			if rec.ExitCode != 0 {
				t.Errorf("imgbase recover after a kill at %s: exit %d: %s", at.name, rec.ExitCode, rec.Stderr)
			}
			if after := LVNames(g.LVs()); after != before {
				t.Errorf("after a kill at %s and recover, LVs are\n  %s\nwant\n  %s", at.name, after, before)
			}
			checkClean(t, g, l1)
		})
	}
	if Long() { // checkClean has looked at every entry and LV; TestPowerCut boots after recovery
		g.ExpectBooted(g.Reboot(), l1, "after the recovered updates")
		g.WaitStarted()
	}

	// Killed after the commit: recover finishes the update.
	committed := t.Run("KillAt/committed", func(t *testing.T) {
		killed, out := g.KillAt(`"phase":"committed"`, "--debug", "update", v2img)
		t.Logf("%s", out)
		if !killed {
			t.Logf("imgbase update ended before the journal showed the commit; nothing to recover")
		}
		rec := g.ImgbaseResult("--debug", "recover")
		t.Logf("imgbase recover: exit %d\n%s%s", rec.ExitCode, rec.Stdout, rec.Stderr)
		if rec.ExitCode != 0 {
			t.Fatalf("imgbase recover after a kill at the commit: exit %d: %s", rec.ExitCode, rec.Stderr)
		}
		lvs := g.LVs()
		checkBase(t, lvs, nvr2)
		checkLayer(t, lvs, v2layer, nvr2)
		if _, err := g.ReadFile("/var/lib/imgbase/journal.json"); err == nil {
			t.Errorf("the journal is still there after recover")
		}
		if d := strings.TrimSpace(g.Imgbase("boot", "--get-default")); d != l1 {
			t.Errorf("before v2's trial boot, boot --get-default = %q, want %s", d, l1)
		}
		// The runs above left their trace for the admin, the killed one included.
		log := g.MustRun("cat", "/var/log/imgbased.log")
		for _, want := range []string{`args="--debug update `, `msg=ran cmd="lvcreate --thin `, `args="--debug recover" `, `msg="imgbase finished"`} {
			if !strings.Contains(log, want) {
				t.Errorf("/var/log/imgbased.log lacks %q", want)
			}
		}
		st := g.Imgbase("boot", "--status")
		t.Logf("imgbase boot --status:\n%s", st)
		if !strings.Contains(st, "on trial: "+v2layer) {
			t.Errorf("%s is not on trial after the update:\n%s", v2layer, st)
		}
	})
	if !committed {
		t.FailNow()
	}
	if r := g.ImgbaseResult("check"); r.ExitCode != 0 {
		t.Errorf("imgbase check after the update: exit %d\n%s%s", r.ExitCode, r.Stdout, r.Stderr)
	}
	// The test image does not ship imgbase: the update put a copy in, and
	// units that run it.
	if got := g.InLayer(v2layer, `test -x "$M/usr/local/sbin/imgbase" || echo "no /usr/local/sbin/imgbase"
grep -qx 'ExecStart=/usr/local/sbin/imgbase boot --mark-good' "$M/etc/systemd/system/imgbase-boot-success.service" || echo "the unit does not run it"
true`); got != "" {
		t.Errorf("the new layer of an image without imgbase:\n%s", got)
	}

	g.ExpectBooted(g.Reboot(), v2layer, "the update's trial boot")
	if s := g.WaitStarted(); s != "active success" {
		t.Errorf("imgbase-boot-success.service on v2's trial boot: %q, want active success", s)
	}
	checkCarried(t, g, adminConf)
	if d := strings.TrimSpace(g.Imgbase("boot", "--get-default")); d != v2layer {
		t.Errorf("after v2's trial boot, boot --get-default = %q, want %s", d, v2layer)
	}

	t.Run("Volume", func(t *testing.T) { volumeVarLog(t, g, []string{l1, v2layer}, v2layer) })
}

// volumeVarLog moves /var/log into a volume shared by every layer: its
// files are kept, every layer's fstab mounts it, and it is mounted again
// after a reboot.
func volumeVarLog(t *testing.T, g *Guest, layers []string, running string) {
	g.MustShell("echo kept >/var/log/imgbase-test.marker")
	out := g.Imgbase("volume", "--create", "/var/log", "1G")
	t.Logf("imgbase volume --create /var/log 1G:\n%s", out)
	lv, ok := g.LVs()["var_log"]
	if !ok || !lv.HasTag("imgbased:volume") || lv.Pool != "pool00" {
		t.Errorf("no thin LV var_log tagged imgbased:volume in pool00: %+v", lv)
	}
	check := func(when string) {
		t.Helper()
		src := strings.TrimSpace(g.MustShell("findmnt -no SOURCE /var/log || true"))
		if !strings.HasSuffix(src, "-var_log") && !strings.HasSuffix(src, "/var_log") {
			t.Errorf("%s: /var/log is mounted from %q, want %s/var_log", when, src, vg)
		}
		if m := strings.TrimSpace(g.MustShell("cat /var/log/imgbase-test.marker || true")); m != "kept" {
			t.Errorf("%s: /var/log/imgbase-test.marker = %q, want kept", when, m)
		}
	}
	check("after volume --create")
	for _, l := range layers {
		fstab := g.MustRun("cat", "/etc/fstab")
		if l != running {
			fstab = g.LayerFile(l, "etc/fstab")
		}
		if !fstabMounts(fstab, "/var/log") {
			t.Errorf("the fstab of %s does not mount /var/log:\n%s", l, fstab)
		}
	}
	if Long() { // TestUpdateFromOCI boots a new layer with its blob cache on a volume
		g.ExpectBooted(g.Reboot(), running, "reboot after volume --create")
		check("after a reboot")
	}
}

// fstabMounts says whether fstab has a line mounting mountpoint.
func fstabMounts(fstab, mountpoint string) bool {
	for _, line := range strings.Split(fstab, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && !strings.HasPrefix(f[0], "#") && f[1] == mountpoint {
			return true
		}
	}
	return false
}

// poolFull fills the pool until the update cannot fit: it must be refused
// with one line and create nothing.
func poolFull(t *testing.T, g *Guest) {
	f := strings.Fields(g.MustRun("lvs", "--noheadings", "--units", "b", "--nosuffix", "-o", "lv_size,data_percent,chunk_size", vg+"/pool00"))
	size, _ := strconv.ParseInt(f[0], 10, 64)
	pct, _ := strconv.ParseFloat(f[1], 64)
	chunk, _ := strconv.ParseInt(f[2], 10, 64)
	free := int64(float64(size) * (100 - pct) / 100)
	// Leave 300 MiB: the v2 image alone holds about 670 MiB of data.
	fill := (free - 300<<20) >> 20
	if fill <= 0 || chunk <= 0 {
		t.Fatalf("the pool has only %d bytes free already (chunk %d)", free, chunk)
	}
	g.MustRun("lvcreate", "-q", "-y", "-V", fmt.Sprintf("%dm", fill+64), "-T", vg+"/pool00", "-n", "filler")
	defer g.MustRun("lvremove", "-q", "-y", vg+"/filler")
	start := time.Now()
	// One write provisions a whole chunk: 4 KiB per chunk takes the pool's
	// space for a sixteenth of the writes (or less). Without zeroing, the
	// rest of each chunk is not written either; zeroing is restored after.
	zeroing := strings.TrimSpace(g.MustRun("lvs", "--noheadings", "-o", "zero", vg+"/pool00")) != ""
	g.MustRun("lvchange", "-q", "-Z", "n", vg+"/pool00")
	g.MustShell(fmt.Sprintf(`perl -e 'open(my $f, "+<", "/dev/%s/filler") or die "$!"; my $b = "x" x 4096;
for (my $o = 0; $o < %d; $o += %d) { sysseek($f, $o, 0) or die "$!"; syswrite($f, $b) == 4096 or die "$!" }' && sync`, vg, fill<<20, chunk))
	if zeroing {
		g.MustRun("lvchange", "-q", "-Z", "y", vg+"/pool00")
	}
	t.Logf("filled %d MiB of the pool in %s; pool: %s", fill, time.Since(start).Round(time.Second),
		g.MustRun("lvs", "--noheadings", "-o", "data_percent,metadata_percent", vg+"/pool00"))

	before := LVNames(g.LVs())
	for _, img := range []string{v2sqfs, v2img} {
		r := g.ImgbaseResult("update", img)
		msg := strings.TrimSpace(r.Stderr)
		t.Logf("imgbase update %s on a full pool: exit %d: %s", img, r.ExitCode, msg)
		if r.ExitCode != 1 {
			t.Errorf("update %s on a full pool: exit %d, want 1 (refused)", img, r.ExitCode)
		}
		// The error is one line; warnings (the unverified image) are
		// apart from it.
		var errs []string
		for _, l := range strings.Split(msg, "\n") {
			if !strings.HasPrefix(l, "imgbase: warning: ") {
				errs = append(errs, l)
			}
		}
		if len(errs) != 1 || !strings.HasPrefix(errs[0], "imgbase: ") || !strings.Contains(errs[0], "pool data") {
			t.Errorf("update %s on a full pool: want one error line naming the pool data shortage, got:\n%s", img, msg)
		}
		if after := LVNames(g.LVs()); after != before {
			t.Errorf("a refused update changed the LVs:\n  %s\nwant\n  %s", after, before)
		}
		if _, err := g.ReadFile("/var/lib/imgbase/journal.json"); err == nil {
			t.Errorf("a refused update left a journal")
		}
	}

	// With lvm.conf letting dmeventd grow the pool from the volume group's
	// free extents, the same update fits: imgbase grows the pool first.
	// dmeventd itself must not grow it meanwhile (the pool is far above
	// the threshold: it did, once, between this and the dry run, which then
	// had nothing to grow): the pool is unmonitored while the test looks.
	g.MustRun("lvchange", "-q", "--monitor", "n", vg+"/pool00")
	defer g.MustRun("lvchange", "-q", "--monitor", "y", vg+"/pool00")
	g.MustShell(`cp /etc/lvm/lvm.conf /run/lvm.conf.orig && sed -i '/^activation {/a\	thin_pool_autoextend_threshold = 80' /etc/lvm/lvm.conf && lvmconfig activation/thin_pool_autoextend_threshold | grep -qx 'thin_pool_autoextend_threshold=80'`)
	defer g.MustShell("cp /run/lvm.conf.orig /etc/lvm/lvm.conf")
	vgFree := strings.TrimSpace(g.MustRun("vgs", "--noheadings", "-o", "vg_free", vg))
	r := g.ImgbaseResult("--dry", "update", v2img)
	t.Logf("imgbase --dry update with autoextend (VG free %s): exit %d\n%s%s", vgFree, r.ExitCode, r.Stdout, r.Stderr)
	if r.ExitCode != 0 || !strings.Contains(r.Stdout, "lvextend --size +") {
		t.Errorf("with autoextend and %s free in the VG: exit %d, want a dry run that grows the pool first:\n%s%s", vgFree, r.ExitCode, r.Stdout, r.Stderr)
	}
}

// checkClean checks that the host is as before an update: no journal, no
// mount of the new base or layer, the old layer the default, check clean.
func checkClean(t *testing.T, g *Guest, def string) {
	t.Helper()
	if _, err := g.ReadFile("/var/lib/imgbase/journal.json"); err == nil {
		t.Errorf("the journal is still there after recover")
	}
	if m := g.MustShell("grep -F 'imgbase--test--2' /proc/mounts || true"); m != "" {
		t.Errorf("the new base or layer is still mounted:\n%s", m)
	}
	if d := strings.TrimSpace(g.Imgbase("boot", "--get-default")); d != def {
		t.Errorf("boot --get-default = %q, want %s", d, def)
	}
	if r := g.ImgbaseResult("check"); r.ExitCode != 0 {
		t.Errorf("imgbase check: exit %d\n%s%s", r.ExitCode, r.Stdout, r.Stderr)
	}
	if l := g.MustShell("ls /boot/loader/entries/"); strings.Contains(l, nvr2) {
		t.Errorf("a boot entry of v2 is left:\n%s", l)
	}
}

// checkCarried checks, on v2's running layer, what became of each of the
// admin's changes.
func checkCarried(t *testing.T, g *Guest, adminConf string) {
	t.Helper()
	read := func(p string) string {
		b, err := g.ReadFile(p)
		if err != nil {
			t.Errorf("%v", err)
		}
		return string(b)
	}
	if v := strings.TrimSpace(read("/usr/share/imgbase-test/version")); v != "2.0" {
		t.Errorf("/usr/share/imgbase-test/version = %q, want 2.0", v)
	}
	g.MustRun("test", "-x", "/usr/bin/hello")
	if m := read("/etc/motd"); !strings.Contains(m, "admin motd line") {
		t.Errorf("the admin's change to /etc/motd was not carried:\n%s", m)
	}
	if c := read("/etc/imgbase-test.conf"); c != adminConf {
		t.Errorf("conflict: /etc/imgbase-test.conf is\n%s\nwant the admin's version\n%s", c, adminConf)
	}
	if c := read("/etc/imgbase-test.conf.imgnew"); c != "# shipped by imgbase-test 2.0\nrelease=2.0\n" {
		t.Errorf("conflict: /etc/imgbase-test.conf.imgnew is not v2's version:\n%s", c)
	}
	if a := read("/etc/imgbase-admin.conf"); a != "added by the admin\n" {
		t.Errorf("/etc/imgbase-admin.conf = %q, want the admin's", a)
	}
	if r, _ := g.Run(time.Minute, "test", "-e", "/etc/issue.net"); r.ExitCode == 0 {
		t.Errorf("/etc/issue.net, deleted by the admin, is back")
	}
	if p := strings.TrimSpace(g.MustShell("getent passwd imgtester || true")); !strings.HasPrefix(p, "imgtester:x:4321:") {
		t.Errorf("user imgtester: getent passwd = %q, want uid 4321", p)
	}
	g.MustShell("grep -q '^imgtester:' /etc/shadow && grep -q '^imgtester:' /etc/group")
	rep := read("/var/lib/imgbase/migrate-report.txt")
	t.Logf("migrate report:\n%s", rep)
	if !strings.Contains(rep, "imgbase-test.conf") {
		t.Errorf("the migrate report does not mention the conflict on /etc/imgbase-test.conf")
	}
}
