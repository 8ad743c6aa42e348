//go:build vm

package vm

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// Power cuts (issue #14, item 4). A process kill (KillAt) leaves the
// guest's page cache to be written back; a power cut loses it. PowerCutAt
// stops imgbase at a chosen point and then kills QEMU itself with SIGKILL:
// every write the guest had not flushed is gone, as when the power fails.
//
// The disk's cache mode decides what "flushed" means. The harness's
// default, cache=unsafe, ignores the guest's flushes: QEMU then keeps
// qcow2 metadata (the L2 tables of newly written clusters) in its own
// memory until it exits, so SIGKILL could lose data the guest had flushed,
// which a disk honouring FLUSH never does: a false failure. A power-cut
// guest therefore runs with cache=writeback: QEMU writes every guest write
// to the overlay file at once and, on a guest flush, its metadata too (and
// fdatasyncs, which costs time, not faithfulness). What QEMU wrote is in
// the host's page cache and survives QEMU's death, since the host itself
// does not lose power. So the cut is exactly: the guest's page cache (and
// anything still inside imgbase or the guest kernel) is lost, whatever
// reached the virtual disk is kept. A real disk with a volatile write cache
// may also lose or reorder writes it received but was not told to flush;
// this cut does not model that (it would need a block filter), so it is
// less harsh than the worst real disk on that one point.

// BootPowerCut is BootLayered for a guest whose power will be cut: its
// overlay uses cache=writeback (see above).
func BootPowerCut(t testing.TB) *Guest {
	t.Helper()
	return bootLayered(t, "writeback")
}

// PowerCut kills QEMU with SIGKILL and powers the machine on again on the
// same overlay, waits for the boot and for systemd to finish starting (so
// that imgbase-recover.service has run), and returns what booted. The
// serial log of the boot that was cut is kept beside the new one.
func (g *Guest) PowerCut() BootInfo {
	g.t.Helper()
	start := time.Now()
	g.Machine.Kill()
	o := g.Machine.Options()
	g.cuts++
	serial := g.SerialLog()
	old := strings.TrimSuffix(serial, ".log") + fmt.Sprintf("-cut%d.log", g.cuts)
	if err := os.Rename(serial, old); err != nil {
		g.t.Fatalf("cannot keep the serial log of the boot that was cut: %v", err)
	}
	m, err := Launch(o)
	if err != nil {
		g.t.Fatalf("cannot power on again after the cut: %v", err)
	}
	g.Machine = m
	g.waitBoot("")
	b := g.Booted()
	g.t.Logf("power cut %d: powered on again in %s into %s (%s)", g.cuts, time.Since(start).Round(time.Second), b.LV, b.Cmdline)
	return b
}

// Cut is what PowerCutAt saw just before the power went.
type Cut struct {
	Done    bool   // the point was reached and the power cut
	Journal string // the journal at the cut, "" when there was none
	Output  string // imgbase's stdout and stderr up to the cut
}

// Committed says whether the journal at the cut was past its commit.
func (c Cut) Committed() bool {
	return strings.Contains(strings.Join(strings.Fields(c.Journal), ""), `"phase":"committed"`)
}

// PowerCutAt starts imgbase with args in the guest (--debug, its output to
// a file), polls the shell condition cond every 20 ms, and once it holds,
// waits delay more, stops imgbase and every child with SIGSTOP (so that
// the cut falls exactly there, whatever the host's latency: a stopped
// process writes nothing more, and stopping flushes nothing), and then
// cuts the power (PowerCut). cond may use $J, the journal, and $LOG,
// imgbase's output. When imgbase ends before cond holds, there is no cut.
func (g *Guest) PowerCutAt(cond string, delay time.Duration, args ...string) Cut {
	g.t.Helper()
	script := `J=/var/lib/imgbase/journal.json LOG=/run/imgbase-test-powercut.log
setsid imgbase --debug "$@" >$LOG 2>&1 &
pid=$!
while kill -0 $pid 2>/dev/null; do
  if eval "$COND"; then
    sleep $DELAY
    kill -STOP -$pid
    echo "=== stopped"
    if [ -f $J ]; then echo "=== journal"; cat $J; fi
    echo "=== output"; cat $LOG
    exit 0
  fi
  sleep 0.02
done
wait $pid; echo "=== ended first: exit $?"; cat $LOG
exit 1`
	argv := append([]string{"env", "COND=" + cond, fmt.Sprintf("DELAY=%.2f", delay.Seconds()), "sh", "-c", script, "sh"}, args...)
	r, err := g.Run(tenMinutes, argv...)
	if err != nil {
		g.t.Fatalf("imgbase %s, to stop when %s: %v", strings.Join(args, " "), cond, err)
	}
	var c Cut
	if r.ExitCode != 0 {
		c.Output = r.Stdout + r.Stderr
		return c
	}
	out := r.Stdout
	if i := strings.Index(out, "=== output\n"); i >= 0 {
		c.Output = out[i+len("=== output\n"):]
		out = out[:i]
	}
	if i := strings.Index(out, "=== journal\n"); i >= 0 {
		c.Journal = out[i+len("=== journal\n"):]
	}
	g.PowerCut()
	c.Done = true
	return c
}

// Conditions for PowerCutAt.

// InJournal holds when the journal, compacted, matches the extended
// regular expression re (JournalStep builds one).
func InJournal(re string) string {
	return fmt.Sprintf(`[ -f $J ] && tr -d ' \n' <$J | grep -Eq '%s'`, re)
}

// InOutput holds when imgbase's output (with --debug: every command it
// ran, with the debug trace) matches the extended regular expression re.
func InOutput(re string) string {
	return fmt.Sprintf(`grep -Eq '%s' $LOG`, re)
}

// Exists holds when path exists in the guest.
func Exists(path string) string {
	return fmt.Sprintf(`[ -e '%s' ]`, path)
}
