//go:build vm

package vm

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// Issue #12 on one guest: v1 → v2 by delta, then v2 → v3 (a directory
// deleted, a file turned into a symlink, a changed initramfs) and v3 → v2
// again (going back), each by delta. The host's own base is not v1.img's
// tree (its /boot is empty), so v1.img is installed first as a base by a
// full write, which copies the record the image carries (test images are
// built with 'imgbase manifest --record'), and v2 is a delta from it; v3
// is one from v2. Every delta takes its hashes from both trees' records,
// reading only the files that changed (a tree without a record, or with a
// stale one, is read: host unit tests). After each delta the new base verifies
// against its manifest and holds the same tree as a full install of the
// same image; the trial boots of v2's and v3's layers work (v3's with its
// own initramfs). A delta killed (SIGKILL) while it syncs and then
// recovered leaves its predecessor unchanged (its manifest verifies) and
// no LV behind. layout --free-space --by-base shows the delta-made bases
// holding next to nothing exclusively, a fully written one a whole image.
// Rolling back to the first layer still boots.
//
// make test, within CI's hour, runs v1 → v2 compared with a full install, v2's trial boot and the free
// space by base: one boot after the first. make check-long runs all of the
// above: four boots, the kill, v2 → v3 (its initramfs changed) and back, a verify and a full-install comparison of
// each delta, check --deep after each boot.
func TestDeltaUpdate(t *testing.T) {
	Parallel(t)
	g := BootLayered(t)
	const (
		v1img   = PayloadDir + "/v1.img"
		v3img   = PayloadDir + "/v3.img"
		v1base  = "imgbase-test-1.0-2" // v1.img by a full write
		fullv2  = "imgbase-test-2.0-9" // v2.img by a full write, to compare with
		killed3 = "imgbase-test-1.0-3" // the delta killed half-way
		nvr3    = "imgbase-test-3.0-1" // v3.img by delta from nvr2
		fullv3  = "imgbase-test-3.0-9" // v3.img by a full write, to compare with
		back2   = "imgbase-test-2.0-4" // v2.img again, by delta from nvr3
	)
	l1, v2layer, v3layer := FirstLayer, nvr2+"+1", nvr3+"+1"
	g.WaitStarted()
	// Every base is kept: garbage collection is not what is tested here.
	g.MustShell("mkdir -p /etc/imgbased.conf.d && printf '[update]\nimages_to_keep = 9\n' >/etc/imgbased.conf.d/keep.conf")

	out := g.Imgbase("base", "--add", "--full", v1base, v1img)
	t.Logf("imgbase base --add --full %s %s: %s", v1base, v1img, out)
	if !strings.Contains(out, "full write: --full") {
		t.Errorf("base --add --full does not say it wrote the whole image: %q", out)
	}
	// The record v1.img carries, copied with its blocks, describes the
	// base. (Reading every file takes two minutes under TCG: check-long.)
	if Long() {
		if r := g.ImgbaseResult("base", "--verify", v1base); r.ExitCode != 0 || !strings.Contains(r.Stdout, "matches its manifest") {
			t.Errorf("base --verify of a base written from an image with a record: exit %d, want 0 saying it matches:\n%s%s", r.ExitCode, r.Stdout, r.Stderr)
		}
	}

	// deltaUpdate runs `imgbase --debug update ARGS`, which must make base
	// by a delta from `from` (a thin snapshot of it) and report the counts,
	// among them the word count; it returns the LVs after.
	deltaUpdate := func(base, from, count string, args ...string) map[string]LV {
		t.Helper()
		r := g.ImgbaseResult(append([]string{"--debug", "update"}, args...)...)
		t.Logf("imgbase update %s: exit %d\n%s%s", strings.Join(args, " "), r.ExitCode, r.Stdout, deltaLines(r.Stderr))
		if r.ExitCode != 0 {
			t.Fatalf("the delta update to %s failed: exit %d", base, r.ExitCode)
		}
		if !strings.Contains(r.Stdout, "delta from "+from+": ") || !strings.Contains(r.Stdout, count) {
			t.Errorf("the update to %s does not report a delta from %s with its counts:\n%s", base, from, r.Stdout)
		}
		if !strings.Contains(r.Stdout, "; hashes from both trees' records") {
			t.Errorf("the update to %s did not take its hashes from the records of the image and of %s:\n%s", base, from, r.Stdout)
		}
		lvs := g.LVs()
		checkBase(t, lvs, base)
		if o := lvs[base].Origin; o != from {
			t.Errorf("base %s has origin %q, want %s (a thin snapshot of its predecessor)", base, o, from)
		}
		return lvs
	}
	lvs := deltaUpdate(nvr2, v1base, " added, ", "--from-base", v1base, v2img)
	checkLayer(t, lvs, v2layer, nvr2)
	checkBase(t, lvs, v1base)
	uuid := func(lv string) string {
		return strings.TrimSpace(g.MustShell(fmt.Sprintf("lvchange -ay -K %[1]s/%[2]s && blkid -p -o value -s UUID /dev/%[1]s/%[2]s; lvchange -an %[1]s/%[2]s", vg, lv)))
	}
	if a, b := uuid(nvr2), uuid(v1base); a == b || a == "" {
		t.Errorf("the delta-made base's filesystem UUID %q is its predecessor's %q", a, b)
	}
	verifyClean := func(base string) {
		t.Helper()
		verify := g.ImgbaseResult("base", "--verify", base)
		t.Logf("imgbase base --verify %s: exit %d\n%s%s", base, verify.ExitCode, verify.Stdout, verify.Stderr)
		if verify.ExitCode != 0 || !strings.Contains(verify.Stdout, "matches its manifest") {
			t.Errorf("base --verify of the delta-made base %s: exit %d, want 0", base, verify.ExitCode)
		}
	}
	if Long() { // make test compares v2 with a full install instead
		verifyClean(nvr2)
	}

	// The same tree as a full install of v2.img: every path's type, mode,
	// owner, and for all but directories size, link count and target, and
	// every file's bytes. A directory's size and link count are the
	// filesystem's (ext4 never shrinks a directory; the root holds the
	// manifest's directory).
	out = g.Imgbase("base", "--add", "--full", fullv2, v2img)
	t.Logf("imgbase base --add --full %s %s: %s", fullv2, v2img, out)
	sameAsFull := func(delta, full string) {
		t.Helper()
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
true`, vg, delta, full))
		t.Logf("delta-made %s vs full %s:\n%s", delta, full, cmp)
		if !strings.Contains(cmp, "listing same") || !strings.Contains(cmp, "contents same") {
			t.Errorf("the delta-made base %s differs from %s, a full install of the same image:\n%s", delta, full, cmp)
		}
	}
	sameAsFull(nvr2, fullv2)
	// fullv2 stays: v3 → v2 is compared with it too, and it is the fully
	// written base of layout --free-space --by-base.

	g.ExpectBooted(g.Reboot(), v2layer, "the delta update's trial boot")
	if s := g.WaitStarted(); s != "active success" {
		t.Errorf("imgbase-boot-success.service on v2's trial boot: %q, want active success", s)
	}
	if Long() {
		if r := g.ImgbaseResult("check", "--deep"); r.ExitCode != 0 {
			t.Errorf("imgbase check --deep on the delta-made base's layer: exit %d\n%s%s", r.ExitCode, r.Stdout, r.Stderr)
		}
	}

	deltaBases := []string{nvr2}
	if Long() { // the rest of #12's VM test
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

		// v2 → v3 by delta from v2 (the running layer's base when v2's layer
		// has booted), whose manifest the delta reads.
		lvs = deltaUpdate(nvr3, nvr2, " removed, ", "--from-base", nvr2, v3img)
		checkLayer(t, lvs, v3layer, nvr3)
		verifyClean(nvr3)
		// What v3 changes, seen in the delta-made base, and its predecessor
		// as it was: the test image must really carry the changes.
		changes := g.MustShell(fmt.Sprintf(`for lv in %[2]s %[3]s; do
  lvchange -ay -K %[1]s/$lv; mkdir -p /run/imgbase-test/v3/$lv; mount -o ro,noload /dev/%[1]s/$lv /run/imgbase-test/v3/$lv
  cd /run/imgbase-test/v3/$lv
  echo "$lv: bash-completion $(stat -c %%F usr/share/bash-completion 2>/dev/null || echo absent); conf $(stat -c %%F etc/imgbase-test.conf) $(readlink etc/imgbase-test.conf); initrd marker $(grep -ac imgbase-test-initrd boot/initrd.img-*)"
  cd /; umount /run/imgbase-test/v3/$lv; lvchange -an %[1]s/$lv
done`, vg, nvr2, nvr3))
		t.Logf("v2 and v3 bases:\n%s", changes)
		for _, want := range []string{
			nvr2 + ": bash-completion directory; conf regular file ; initrd marker 0",
			nvr3 + ": bash-completion absent; conf symbolic link ../usr/share/imgbase-test/imgbase-test.conf; initrd marker 1",
		} {
			if !strings.Contains(changes, want) {
				t.Errorf("v2 → v3: want a line %q", want)
			}
		}
		out = g.Imgbase("base", "--add", "--full", fullv3, v3img)
		t.Logf("imgbase base --add --full %s %s: %s", fullv3, v3img, out)
		sameAsFull(nvr3, fullv3)
		g.Imgbase("base", "--remove", fullv3)

		// v3's trial boot: its kernel is v2's vmlinuz with v3's initramfs.
		g.ExpectBooted(g.Reboot(), v3layer, "the v2 → v3 delta update's trial boot")
		if s := g.WaitStarted(); s != "active success" {
			t.Errorf("imgbase-boot-success.service on v3's trial boot: %q, want active success", s)
		}
		kern := g.MustShell(fmt.Sprintf("cd /boot && grep -ac imgbase-test-initrd %s/initrd.img-* %s/initrd.img-* || true", v2layer, v3layer))
		t.Logf("the initramfs marker in each layer's /boot (file:count):\n%s", kern)
		marks := map[string]string{}
		for _, l := range strings.Fields(kern) {
			if f, n, ok := strings.Cut(l, ":"); ok {
				marks[strings.Split(f, "/")[0]] = n
			}
		}
		if marks[v2layer] != "0" || marks[v3layer] != "1" {
			t.Errorf("want v3's layer booting v3's initramfs (with the marker) and v2's without:\n%s", kern)
		}
		if r := g.ImgbaseResult("check", "--deep"); r.ExitCode != 0 {
			t.Errorf("imgbase check --deep on v3's layer: exit %d\n%s%s", r.ExitCode, r.Stdout, r.Stderr)
		}

		// Going back, a second delta of each kind of change: v3 → v2 again,
		// by delta from v3: the directory comes back, the symlink becomes a
		// file again, the initramfs is v2's.
		deltaBases = append(deltaBases, nvr3, back2)
		deltaUpdate(back2, nvr3, " added, ", "--nvr", back2, v2img)
		verifyClean(back2)
		sameAsFull(back2, fullv2)

	}

	// What each base holds: the fully written v2 a whole image of its
	// own, each delta-made base (and its layer) nearly nothing.
	text := g.Imgbase("layout", "--free-space", "--by-base", "--units", "m")
	t.Logf("imgbase layout --free-space --by-base --units m:\n%s", text)
	if l := strings.SplitN(text, "\n", 3); len(l) < 3 || !strings.HasSuffix(l[0], "M") || !strings.HasPrefix(l[1], "BASE ") {
		t.Errorf("layout --free-space --by-base: want the free space, then a table:\n%s", text)
	}
	var usage struct {
		Free  uint64 `json:"free"`
		Bases []struct {
			Base                      string
			Mapped, Exclusive, Shared uint64
		} `json:"bases"`
	}
	if err := json.Unmarshal([]byte(g.Imgbase("--json", "layout", "--free-space", "--by-base")), &usage); err != nil {
		t.Fatalf("layout --free-space --by-base --json: %v", err)
	}
	held := map[string][3]uint64{}
	for _, b := range usage.Bases {
		held[b.Base] = [3]uint64{b.Mapped, b.Exclusive, b.Shared}
		t.Logf("base %-20s mapped %6.1f MiB, exclusive %6.1f MiB, shared %6.1f MiB", b.Base, mib(b.Mapped), mib(b.Exclusive), mib(b.Shared))
	}
	full := held[fullv2]
	if full[1] < 300<<20 {
		t.Errorf("the fully written base %s holds %.1f MiB exclusively, want most of a 657 MiB image", fullv2, mib(full[1]))
	}
	for _, d := range deltaBases {
		h, ok := held[d]
		if !ok {
			t.Errorf("layout --free-space --by-base lists no %s", d)
			continue
		}
		if h[0] < 300<<20 || h[1]*10 > full[1] || h[1]+h[2] != h[0] {
			t.Errorf("the delta-made base %s: mapped %d, exclusive %d, shared %d; want a whole tree mapped, less than a tenth of %s's %d exclusively", d, h[0], h[1], h[2], fullv2, full[1])
		}
	}
	g.Imgbase("base", "--remove", fullv2)

	if !Long() {
		return
	}
	// The newest layer (v2 again) has not booted; name the first.
	out = g.Imgbase("rollback", "--to", l1)
	t.Logf("imgbase rollback --to %s: %s", l1, out)
	g.ExpectBooted(g.Reboot(), l1, "the rollback to the first layer")
	g.WaitStarted()
	if r := g.ImgbaseResult("check", "--deep"); r.ExitCode != 0 || !strings.Contains(r.Stdout, "has no manifest") {
		t.Errorf("imgbase check --deep on the host's own base: exit %d, want 0 saying it has no manifest\n%s%s", r.ExitCode, r.Stdout, r.Stderr)
	}
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// deltaLines keeps, of an update's --debug trace, the delta's figures and
// any warning or error: the whole trace is thousands of lines.
func deltaLines(stderr string) string {
	var b strings.Builder
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, "msg=\"delta") || strings.Contains(l, "msg=\"tree synced\"") || strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
