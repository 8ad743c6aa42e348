//go:build vm

package vm

import (
	"fmt"
	"strings"
	"testing"
)

// Issue #12 on one guest: v1 → v2 by delta. The host's own base is not
// v1.img's tree (its /boot is empty), so v1.img is installed first as a
// base by a full write, and v2 is a delta from it. The delta-made base
// verifies against its manifest, holds the same tree as a full install of
// v2.img, and its layer's trial boot works. A delta killed (SIGKILL) while
// it syncs and then recovered leaves its predecessor unchanged (its
// manifest verifies) and no LV behind. Rolling back to the first layer
// still boots.
// Boots: the first, into the first layer, into v2's layer, the rollback.
func TestDeltaUpdate(t *testing.T) {
	Parallel(t)
	g := BootLayered(t)
	const (
		v1img   = PayloadDir + "/v1.img"
		v1base  = "imgbase-test-1.0-2" // v1.img by a full write
		fullv2  = "imgbase-test-2.0-9" // v2.img by a full write, to compare with
		killed3 = "imgbase-test-1.0-3" // the delta killed half-way
	)
	l1, v2layer := FirstLayer, nvr2+"+1"
	g.WaitStarted()
	// Every base is kept: garbage collection is not what is tested here.
	g.MustShell("mkdir -p /etc/imgbased.conf.d && printf '[update]\nimages_to_keep = 9\n' >/etc/imgbased.conf.d/keep.conf")

	out := g.Imgbase("base", "--add", "--full", v1base, v1img)
	t.Logf("imgbase base --add --full %s %s: %s", v1base, v1img, out)
	if !strings.Contains(out, "full write: --full") {
		t.Errorf("base --add --full does not say it wrote the whole image: %q", out)
	}
	if r := g.ImgbaseResult("base", "--verify", v1base); r.ExitCode != 0 || !strings.Contains(r.Stdout, "has no manifest (installed by a full write)") {
		t.Errorf("base --verify of a fully written base: exit %d, want 0 saying it has no manifest:\n%s%s", r.ExitCode, r.Stdout, r.Stderr)
	}

	r := g.ImgbaseResult("--debug", "update", "--from-base", v1base, v2img)
	t.Logf("imgbase update --from-base %s %s: exit %d\n%s%s", v1base, v2img, r.ExitCode, r.Stdout, r.Stderr)
	if r.ExitCode != 0 {
		t.Fatalf("the delta update failed: exit %d", r.ExitCode)
	}
	if !strings.Contains(r.Stdout, "delta from "+v1base+": ") || !strings.Contains(r.Stdout, " added, ") {
		t.Errorf("the update does not report a delta from %s with its counts:\n%s", v1base, r.Stdout)
	}
	lvs := g.LVs()
	checkBase(t, lvs, nvr2)
	checkLayer(t, lvs, v2layer, nvr2)
	checkBase(t, lvs, v1base)
	if o := lvs[nvr2].Origin; o != v1base {
		t.Errorf("base %s has origin %q, want %s (a thin snapshot of its predecessor)", nvr2, o, v1base)
	}
	uuid := func(lv string) string {
		return strings.TrimSpace(g.MustShell(fmt.Sprintf("lvchange -ay -K %[1]s/%[2]s && blkid -p -o value -s UUID /dev/%[1]s/%[2]s; lvchange -an %[1]s/%[2]s", vg, lv)))
	}
	if a, b := uuid(nvr2), uuid(v1base); a == b || a == "" {
		t.Errorf("the delta-made base's filesystem UUID %q is its predecessor's %q", a, b)
	}
	verify := g.ImgbaseResult("base", "--verify", nvr2)
	t.Logf("imgbase base --verify %s: exit %d\n%s%s", nvr2, verify.ExitCode, verify.Stdout, verify.Stderr)
	if verify.ExitCode != 0 || !strings.Contains(verify.Stdout, "matches its manifest") {
		t.Errorf("base --verify of the delta-made base: exit %d, want 0", verify.ExitCode)
	}

	// The same tree as a full install of v2.img: every path's type, mode,
	// owner, and for all but directories size, link count and target, and
	// every file's bytes. A directory's size and link count are the
	// filesystem's (ext4 never shrinks a directory; the root holds the
	// manifest's directory).
	out = g.Imgbase("base", "--add", "--full", fullv2, v2img)
	t.Logf("imgbase base --add --full %s %s: %s", fullv2, v2img, out)
	cmp := g.MustShell(fmt.Sprintf(`set -e
for lv in %[2]s %[3]s; do
  lvchange -ay -K %[1]s/$lv; mkdir -p /run/imgbase-test/cmp/$lv
  mount -o ro,noload /dev/%[1]s/$lv /run/imgbase-test/cmp/$lv
  (cd /run/imgbase-test/cmp/$lv && find . -path ./.imgbase -prune -o -path ./lost+found -prune -o \
    -type d -printf '%%p d %%m %%U %%G\n' -o -printf '%%p %%y %%m %%U %%G %%s %%n %%l\n' | LC_ALL=C sort) >/run/imgbase-test/cmp/$lv.list
  (cd /run/imgbase-test/cmp/$lv && find . \( -type c -o -type b \) -exec stat -c '%%n %%F %%t:%%T' {} + | LC_ALL=C sort) >>/run/imgbase-test/cmp/$lv.list
done
cd /run/imgbase-test/cmp
diff %[2]s.list %[3]s.list && echo "listing same: $(wc -l <%[2]s.list) lines"
# diff -r cannot compare device nodes (their numbers are in the listing).
diff -r --no-dereference -x .imgbase -x lost+found %[2]s %[3]s >diff.out 2>&1 || true
grep -v ' is a \(character\|block\) special file while file .* is a \(character\|block\) special file$' diff.out >diff.rest || true
[ -s diff.rest ] || echo "contents same"
head -20 diff.rest
for lv in %[2]s %[3]s; do umount /run/imgbase-test/cmp/$lv; lvchange -an %[1]s/$lv; done
true`, vg, nvr2, fullv2))
	t.Logf("delta-made %s vs full %s:\n%s", nvr2, fullv2, cmp)
	if !strings.Contains(cmp, "listing same") || !strings.Contains(cmp, "contents same") {
		t.Errorf("the delta-made base differs from a full install of the same image:\n%s", cmp)
	}
	g.Imgbase("base", "--remove", fullv2)

	g.ExpectBooted(g.Reboot(), v2layer, "the delta update's trial boot")
	if s := g.WaitStarted(); s != "active success" {
		t.Errorf("imgbase-boot-success.service on v2's trial boot: %q, want active success", s)
	}
	if r := g.ImgbaseResult("check", "--deep"); r.ExitCode != 0 {
		t.Errorf("imgbase check --deep on the delta-made base's layer: exit %d\n%s%s", r.ExitCode, r.Stdout, r.Stderr)
	}

	// A delta from the running layer's base (v2, which has a manifest)
	// back to v1, killed while the new base is mounted read-write.
	t.Run("KillDuringSync", func(t *testing.T) {
		before := LVNames(g.LVs())
		mnt := "/run/imgbase/mnt/" + killed3
		script := `setsid imgbase --debug update --nvr ` + killed3 + ` ` + v1img + ` >/run/imgbase-test-kill.log 2>&1 &
pid=$!
killed=no
while kill -0 $pid 2>/dev/null; do
  if findmnt -n -O rw ` + mnt + ` >/dev/null; then kill -9 -$pid; killed=yes; break; fi
  sleep 0.02
done
wait $pid
sleep 1
echo "killed=$killed"
cat /run/imgbase-test-kill.log
cat /var/lib/imgbase/journal.json || true`
		res := g.MustShell(script)
		t.Logf("%s", res)
		if !strings.Contains(res, "killed=yes") {
			t.Fatalf("the update ended before the new base was mounted read-write")
		}
		rec := g.ImgbaseResult("--debug", "recover")
		t.Logf("imgbase recover: exit %d\n%s%s", rec.ExitCode, rec.Stdout, rec.Stderr)
		if rec.ExitCode != 0 {
			t.Errorf("imgbase recover after a kill during the sync: exit %d", rec.ExitCode)
		}
		if after := LVNames(g.LVs()); after != before {
			t.Errorf("after a kill during the sync and recover, LVs are\n  %s\nwant\n  %s", after, before)
		}
		if m := g.MustShell("grep -E 'imgbase/mnt|imgbase--test--1.0--3' /proc/mounts || true"); m != "" {
			t.Errorf("left mounted after recover:\n%s", m)
		}
		if r := g.ImgbaseResult("base", "--verify", nvr2); r.ExitCode != 0 {
			t.Errorf("the predecessor %s after a killed delta: base --verify exit %d\n%s%s", nvr2, r.ExitCode, r.Stdout, r.Stderr)
		}
	})

	out = g.Imgbase("rollback")
	t.Logf("imgbase rollback: %s", out)
	g.ExpectBooted(g.Reboot(), l1, "the rollback to the first layer")
	g.WaitStarted()
	if r := g.ImgbaseResult("check", "--deep"); r.ExitCode != 0 || !strings.Contains(r.Stdout, "has no manifest") {
		t.Errorf("imgbase check --deep on the host's own base: exit %d, want 0 saying it has no manifest\n%s%s", r.ExitCode, r.Stdout, r.Stderr)
	}
}
