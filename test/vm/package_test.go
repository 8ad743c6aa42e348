//go:build vm

package vm

import (
	"fmt"
	"strings"
	"testing"
)

// Issue #10 on one guest: imgbase installed from its .deb (by the harness,
// dpkg -i), its units enabled by the package; an update from an image that
// carries the package keeps the image's own units and binary, and the
// trial boot into it is marked good by the packaged unit.
func TestPackagedUpdate(t *testing.T) {
	Parallel(t)
	g := BootLayered(t)
	v2layer := nvr2 + "+1"
	if p := strings.TrimSpace(g.MustShell("command -v imgbase")); p != ImgbasePath {
		t.Errorf("command -v imgbase = %q, want %s (the package's)", p, ImgbasePath)
	}
	if s := strings.TrimSpace(g.MustShell("dpkg-query -W -f '${Status}' imgbase")); s != "install ok installed" {
		t.Errorf("dpkg-query: imgbase is %q", s)
	}
	if e := strings.Fields(g.MustShell("systemctl is-enabled imgbase-boot-success.service imgbase-recover.service || true")); strings.Join(e, " ") != "enabled enabled" {
		t.Errorf("systemctl is-enabled of the units: %q, want enabled enabled", e)
	}

	pkgImg := "/var/tmp/v2-packaged.img"
	if err := g.PackagedImage(debUnderTest(t), v2img, pkgImg); err != nil {
		t.Fatal(err)
	}
	// --full: what is tested is the package in the image, not how the
	// base is written; a delta describes the whole tree file by file,
	// ~4 minutes under TCG against ~40 s for the full write (TestDeltaUpdate
	// proves the delta).
	out := g.Imgbase("update", "--full", pkgImg)
	t.Logf("imgbase update %s:\n%s", pkgImg, out)
	g.MustRun("rm", pkgImg)
	// The image ships the package: imgbase adds no unit and no binary of
	// its own to the new layer.
	got := g.InLayer(v2layer, `for f in etc/systemd/system/imgbase-boot-success.service usr/local/sbin/imgbase; do
  test -e "$M/$f" && echo "imgbase wrote $f"; done
test -f "$M/lib/systemd/system/imgbase-boot-success.service" || echo "the image's unit is missing"
test -L "$M/etc/systemd/system/multi-user.target.wants/imgbase-boot-success.service" || echo "the image's unit is not enabled"
true`)
	if got != "" {
		t.Errorf("the new layer of a packaged image:\n%s", got)
	}

	g.ExpectBooted(g.Reboot(), v2layer, "the packaged update's trial boot")
	if s := g.WaitStarted(); s != "active success" {
		t.Errorf("imgbase-boot-success.service on the trial boot: %q, want active success", s)
	}
	if f := strings.TrimSpace(g.MustShell("systemctl show -p FragmentPath --value imgbase-boot-success.service")); f != "/lib/systemd/system/imgbase-boot-success.service" && f != "/usr/lib/systemd/system/imgbase-boot-success.service" {
		t.Errorf("the trial was judged by %s, want the packaged unit", f)
	}
	if d := strings.TrimSpace(g.Imgbase("boot", "--get-default")); d != v2layer {
		t.Errorf("after the trial boot, boot --get-default = %q, want %s", d, v2layer)
	}

	t.Run("Concurrent", func(t *testing.T) { concurrent(t, g) })
}

// concurrent starts four commands that change the system at once (#14):
// the lock serialises them, so each one succeeds or fails with the lock's
// message, and the layout they leave is consistent.
func concurrent(t *testing.T, g *Guest) {
	// Keep every base: garbage collection by the update would make the
	// base --remove fail for another reason than the lock.
	g.MustShell("mkdir -p /etc/imgbased.conf.d && printf '[update]\nimages_to_keep = 9\n' >/etc/imgbased.conf.d/keep.conf")
	defer g.MustRun("rm", "/etc/imgbased.conf.d/keep.conf")
	g.Imgbase("base", "--add", "Spare-1-0", "--size", "256M")
	cmds := []string{
		"imgbase --lock-timeout 2s layer --add",
		"imgbase layer --add",
		"imgbase update --full --nvr imgbase-test-3.0-1 " + v2img, // --full: minutes sooner than a delta
		"imgbase --lock-timeout 2s base --remove Spare-1-0",
	}
	var script strings.Builder
	script.WriteString("cd /var/tmp\n")
	for i, c := range cmds {
		fmt.Fprintf(&script, "%s >c%d.out 2>c%d.err & p%d=$!\n", c, i, i, i)
	}
	for i := range cmds {
		fmt.Fprintf(&script, "wait $p%d; echo \"$?\"\n", i)
	}
	codes := strings.Fields(g.MustShell(script.String()))
	if len(codes) != len(cmds) {
		t.Fatalf("exit codes %q for %d commands", codes, len(cmds))
	}
	succeeded := 0
	for i, c := range cmds {
		errOut := strings.TrimSpace(g.MustRun("cat", fmt.Sprintf("/var/tmp/c%d.err", i)))
		t.Logf("%s: exit %s %s", c, codes[i], errOut)
		switch {
		case codes[i] == "0":
			succeeded++
		case codes[i] == "1" && strings.Contains(errOut, "another imgbase is running"):
		default:
			t.Errorf("%s: exit %s, want success or the lock's refusal: %s", c, codes[i], errOut)
		}
	}
	if succeeded == 0 {
		t.Errorf("no command succeeded")
	}
	if r := g.ImgbaseResult("check"); r.ExitCode != 0 {
		t.Errorf("imgbase check after the concurrent commands: exit %d\n%s%s", r.ExitCode, r.Stdout, r.Stderr)
	}
	list := g.Imgbase("boot", "--list")
	layers := strings.Fields(g.Imgbase("layout", "--layers"))
	t.Logf("layers %v; imgbase boot --list:\n%s", layers, list)
	for _, l := range layers {
		if !strings.Contains(list, l) {
			t.Errorf("layer %s has no boot entry", l)
		}
	}
}
