package journal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

var testTime = time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)

func mustMarshal(t *testing.T, r *record) []byte {
	t.Helper()
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// The crash tests run a transaction in a child process (this test binary
// again) that kills itself with SIGKILL at a chosen point, as kill -9 or a
// power cut would stop imgbase: no deferred code, no rollback. The world
// is a directory, so what the child did stays for the parent's Recover.
const (
	envWorld = "JOURNAL_CRASH_WORLD" // the world's directory
	envMode  = "JOURNAL_CRASH_MODE"  // "run" or "recover"
	envWrite = "JOURNAL_CRASH_WRITE" // die right after the journal's Nth record
	envMid   = "JOURNAL_CRASH_MID"   // die inside step k's Do, after its effect
	envFail  = "JOURNAL_CRASH_FAIL"  // step k fails (to crash during the rollback)
)

func die() {
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // never reached: SIGKILL cannot be caught
}

func envInt(name string) int {
	n, err := strconv.Atoi(os.Getenv(name))
	if err != nil {
		return -1
	}
	return n
}

// TestCrashHelper is the child process; it does nothing in a normal run.
func TestCrashHelper(t *testing.T) {
	dir := os.Getenv(envWorld)
	if dir == "" {
		t.Skip("only run as the child of a crash test")
	}
	w := world{dir: dir}
	j := w.journal()
	writes, crashWrite := 0, envInt(envWrite)
	j.afterWrite = func(*record) {
		writes++
		if writes == crashWrite {
			die()
		}
	}
	if os.Getenv(envMode) == "recover" {
		if _, err := j.Recover(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		return
	}
	tx := w.updateTx()
	if k := envInt(envFail); k >= 0 {
		tx = failAt(tx, j.Kinds, k, true)
	}
	if k := envInt(envMid); k >= 0 {
		all := append(tx.Steps, tx.AfterCommit...)
		s := &all[k]
		orig, kind, args := s.Do, s.Kind, s.Args
		s.Do = func(ctx context.Context) error {
			if orig != nil {
				orig(ctx)
			} else {
				j.Kinds[kind].Do(ctx, args)
			}
			die()
			return nil
		}
		tx.Steps, tx.AfterCommit = all[:len(tx.Steps)], all[len(tx.Steps):]
	}
	err := j.Run(context.Background(), tx)
	if envInt(envFail) >= 0 && errors.Is(err, errBoom) {
		return // the expected failure, rolled back
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
}

// child runs the helper and reports whether it was killed.
func child(t *testing.T, w world, env ...string) (killed bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), append(env, envWorld+"="+w.dir)...)
	out, err := cmd.CombinedOutput()
	if err == nil {
		return false
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return true
		}
	}
	t.Fatalf("child %v: %v\n%s", env, err, out)
	return false
}

// recoverTo runs Recover in this process and checks the world against
// want, and that a second Recover does nothing.
func recoverTo(t *testing.T, w world, want map[string]string, rolledBack bool) {
	t.Helper()
	out, err := w.journal().Recover(context.Background())
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	if out == nil {
		t.Fatal("Recover found no journal after a crash")
	}
	if out.RolledBack != rolledBack {
		t.Errorf("Recover rolled back = %v, want %v (%v)", out.RolledBack, rolledBack, out.Steps)
	}
	if d := diffState(w.state(t), want); d != "" {
		t.Errorf("after Recover:\n%s", d)
	}
	if w.journalExists(t) {
		t.Error("journal left after Recover")
	}
	if out, err := w.journal().Recover(context.Background()); out != nil || err != nil {
		t.Errorf("second Recover = %+v, %v; want nothing", out, err)
	}
}

// The records of a whole update up to its commit: one per step (the first
// carries the plan, each says its step is tried and the one before done),
// then the commit.
func commitRecord(tx Tx) int { return len(tx.Steps) + 1 }

func TestCrashAfterEveryRecordThenRecover(t *testing.T) {
	t.Parallel()
	final := finalState(t)
	commit := commitRecord(newWorld(t).updateTx())
	for n := 1; ; n++ {
		w := newWorld(t)
		start := w.state(t)
		if !child(t, w, envWrite+"="+strconv.Itoa(n), envMode+"=run") {
			// n is past the last record: the update ran whole.
			if n <= commit {
				t.Fatalf("the child finished before the commit record %d", commit)
			}
			if d := diffState(w.state(t), final); d != "" || w.journalExists(t) {
				t.Errorf("uninterrupted run:\n%s", d)
			}
			return
		}
		t.Run(fmt.Sprintf("record%d", n), func(t *testing.T) {
			if n < commit {
				recoverTo(t, w, start, true)
			} else {
				recoverTo(t, w, final, false)
			}
		})
	}
}

func TestCrashInsideEveryStepThenRecover(t *testing.T) {
	t.Parallel()
	final := finalState(t)
	tx := newWorld(t).updateTx()
	for k := range len(tx.Steps) + len(tx.AfterCommit) {
		t.Run(fmt.Sprintf("step%d", k+1), func(t *testing.T) {
			w := newWorld(t)
			start := w.state(t)
			if !child(t, w, envMid+"="+strconv.Itoa(k), envMode+"=run") {
				t.Fatal("the child was not killed")
			}
			if k < len(tx.Steps) {
				recoverTo(t, w, start, true)
			} else {
				recoverTo(t, w, final, false)
			}
		})
	}
}

// A step fails and the process dies at each record of its rollback.
func TestCrashDuringRollbackThenRecover(t *testing.T) {
	t.Parallel()
	const failing = 6     // boot-entry: six steps to undo before it
	before := failing + 1 // the record that tries it
	for n := before; ; n++ {
		w := newWorld(t)
		start := w.state(t)
		if !child(t, w, envFail+"="+strconv.Itoa(failing), envWrite+"="+strconv.Itoa(n), envMode+"=run") {
			if n <= before+1 {
				t.Fatal("the rollback wrote no records")
			}
			if d := diffState(w.state(t), start); d != "" || w.journalExists(t) {
				t.Errorf("uninterrupted rollback:\n%s", d)
			}
			return
		}
		t.Run(fmt.Sprintf("record%d", n), func(t *testing.T) { recoverTo(t, w, start, true) })
	}
}

// Recover itself is killed at each of its records, and the next Recover
// still reaches the right end.
func TestCrashDuringRecoverThenRecover(t *testing.T) {
	t.Parallel()
	final := finalState(t)
	tx := newWorld(t).updateTx()
	for _, c := range []struct {
		name  string
		mid   int
		final bool
	}{
		{"before commit", 5, false},
		{"after commit", len(tx.Steps), true},
	} {
		for n := 1; ; n++ {
			w := newWorld(t)
			start := w.state(t)
			if !child(t, w, envMid+"="+strconv.Itoa(c.mid), envMode+"=run") {
				t.Fatal("the child was not killed")
			}
			if !child(t, w, envWrite+"="+strconv.Itoa(n), envMode+"=recover") {
				if n == 1 {
					t.Fatalf("%s: Recover wrote no records", c.name)
				}
				break
			}
			t.Run(fmt.Sprintf("%s/record%d", c.name, n), func(t *testing.T) {
				if c.final {
					recoverTo(t, w, final, false)
				} else {
					recoverTo(t, w, start, true)
				}
			})
		}
	}
}
