//go:build vm

package vm

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// Helpers for the boot (#4) and update (#5) walk-throughs, built on the
// harness's exported API.

// Imgbase runs imgbase in the guest, fails the test unless it exits 0 and
// returns stdout.
func (g *Guest) Imgbase(args ...string) string {
	g.t.Helper()
	return g.MustRun(append([]string{"imgbase"}, args...)...)
}

// ImgbaseResult runs imgbase in the guest and returns what it did, whatever
// the exit code.
func (g *Guest) ImgbaseResult(args ...string) Result {
	g.t.Helper()
	r, err := g.Run(tenMinutes, append([]string{"imgbase"}, args...)...)
	if err != nil {
		g.t.Fatalf("imgbase %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// ExpectBooted checks, with findmnt, lvs and /proc/cmdline, that b is a
// boot of layer.
func (g *Guest) ExpectBooted(b BootInfo, layer, why string) {
	g.t.Helper()
	if b.LV != vg+"/"+layer {
		g.t.Errorf("%s: booted %q (findmnt / source %s), want %s/%s", why, b.LV, b.Source, vg, layer)
	}
	mapper := "/dev/mapper/" + strings.ReplaceAll(vg, "-", "--") + "-" + strings.ReplaceAll(layer, "-", "--")
	if b.Source != mapper && b.Source != "/dev/"+vg+"/"+layer {
		g.t.Errorf("%s: findmnt / source %q, want %s", why, b.Source, mapper)
	}
	args := strings.Fields(b.Cmdline)
	if !contains(args, "img.bootid="+layer) {
		g.t.Errorf("%s: /proc/cmdline %q lacks img.bootid=%s", why, b.Cmdline, layer)
	}
	if !contains(args, "root=/dev/"+vg+"/"+layer) && !contains(args, "root="+mapper) {
		g.t.Errorf("%s: /proc/cmdline %q does not name %s/%s as root=", why, b.Cmdline, vg, layer)
	}
}

// WaitStarted waits until systemd has finished starting this boot (the
// agent answers earlier than that), so that imgbase-boot-success.service
// has run or failed, and returns that unit's state.
func (g *Guest) WaitStarted() string {
	g.t.Helper()
	// is-system-running exits non-zero for "degraded": still done starting.
	r, err := g.Shell(5*time.Minute, "timeout 240 systemctl is-system-running --wait; "+
		"u=imgbase-boot-success.service; echo \"$(systemctl show -p ActiveState --value $u) $(systemctl show -p Result --value $u)\"")
	if err != nil {
		g.t.Fatalf("cannot wait for the boot to finish: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	state := lines[len(lines)-1]
	g.t.Logf("system %s; imgbase-boot-success.service %s", lines[0], state)
	// No imgbase unit fails at boot in any test: one that does (recover
	// replaying a journal that is not this layer's, say) is a defect even
	// when the boot looks right.
	failed := g.MustShell("systemctl list-units --failed --plain --no-legend 'imgbase-*' | awk '{print $1}'")
	for _, u := range strings.Fields(failed) {
		g.t.Errorf("%s failed at this boot:\n%s", u, g.MustShell("journalctl -b --no-pager -o cat -u "+u+" | tail -n 20"))
	}
	return state
}

// InLayer runs a shell script with $M set to layer's filesystem mounted
// read-write (the layer must not be the running one).
func (g *Guest) InLayer(layer, script string) string {
	g.t.Helper()
	mnt := "/run/imgbase-test/rw/" + layer
	return g.MustShell(fmt.Sprintf("set -e; M='%[1]s'; mkdir -p \"$M\"; mount /dev/%[2]s/'%[3]s' \"$M\"; "+
		"trap 'umount \"$M\"' EXIT; %[4]s", mnt, vg, layer, script))
}

// SerialSize is the current length of the serial log, to read what a
// later boot printed with SerialSince.
func (g *Guest) SerialSize() int64 {
	fi, err := os.Stat(g.SerialLog())
	if err != nil {
		return 0
	}
	return fi.Size()
}

// SerialSince returns the serial log from offset on.
func (g *Guest) SerialSince(off int64) string {
	b, err := os.ReadFile(g.SerialLog())
	if err != nil || off > int64(len(b)) {
		return ""
	}
	return string(b[off:])
}

// LVNames returns the sorted names of lvs, for before/after comparisons.
func LVNames(lvs map[string]LV) string {
	var n []string
	for k := range lvs {
		n = append(n, k)
	}
	sort.Strings(n)
	return strings.Join(n, " ")
}

// KillAt starts imgbase with args in the guest in a session of its own,
// polls the update journal until its compacted JSON matches the extended
// regular expression at, and then kills imgbase and its children with
// SIGKILL, as a crash would. It returns whether the kill happened (false:
// imgbase ended first) and what imgbase printed.
func (g *Guest) KillAt(at string, args ...string) (bool, string) {
	g.t.Helper()
	script := `j=/var/lib/imgbase/journal.json
setsid imgbase "$@" >/run/imgbase-test-killat.log 2>&1 &
pid=$!
killed=no
while kill -0 $pid 2>/dev/null; do
  if [ -f $j ] && tr -d ' \n' <$j | grep -Eq "$AT"; then
    kill -9 -$pid; killed=yes
    echo "killed at:"; cat $j
    break
  fi
  sleep 0.05
done
wait $pid; rc=$?
# The session's children die with it; give the kernel a moment to reap them.
sleep 1
echo "imgbase exit $rc; killed=$killed"
cat /run/imgbase-test-killat.log
[ $killed = yes ]`
	argv := append([]string{"env", "AT=" + at, "sh", "-c", script, "sh"}, args...)
	r, err := g.Run(tenMinutes, argv...)
	if err != nil {
		g.t.Fatalf("imgbase %s killed at %s: %v", strings.Join(args, " "), at, err)
	}
	return r.ExitCode == 0, r.Stdout + r.Stderr
}

// JournalStep is the extended regular expression KillAt waits for: step
// kind of the update journal in state.
func JournalStep(kind, state string) string {
	return `"kind":"` + kind + `","args":\{[^}]*\},"state":"` + state + `"`
}
