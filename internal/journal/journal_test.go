package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

var errBoom = errors.New("boom")

// failAt returns tx with its step k (counting the steps after the commit
// after the others) made to fail: before doing anything, or after doing its
// whole effect, as a step that times out after its work is done would.
func failAt(tx Tx, kinds Kinds, k int, afterEffect bool) Tx {
	steps := append([]Step{}, tx.Steps...)
	after := append([]Step{}, tx.AfterCommit...)
	s := &after[0]
	if k < len(steps) {
		s = &steps[k]
	} else {
		s = &after[k-len(steps)]
	}
	orig, kind, args := s.Do, s.Kind, s.Args
	s.Do = func(ctx context.Context) error {
		if afterEffect {
			var err error
			if orig != nil {
				err = orig(ctx)
			} else {
				err = kinds[kind].Do(ctx, args)
			}
			if err != nil {
				return fmt.Errorf("the step itself failed: %w", err)
			}
		}
		return errBoom
	}
	return Tx{Name: tx.Name, Steps: steps, AfterCommit: after}
}

func TestRunDoesEveryStepAndRemovesTheJournal(t *testing.T) {
	w := newWorld(t)
	start := w.state(t)
	final := finalState(t)
	if err := w.journal().Run(context.Background(), w.updateTx()); err != nil {
		t.Fatal(err)
	}
	if d := diffState(w.state(t), final); d != "" {
		t.Errorf("after Run:\n%s", d)
	}
	if d := diffState(w.state(t), start); d == "" {
		t.Error("Run changed nothing")
	}
	if w.journalExists(t) {
		t.Error("the journal is left after a whole transaction")
	}
	if out, err := w.journal().Recover(context.Background()); out != nil || err != nil {
		t.Errorf("Recover after a whole transaction = %+v, %v; want nothing", out, err)
	}
}

func TestFailureBeforeCommitUndoesEverything(t *testing.T) {
	for k := range len(newWorld(t).updateTx().Steps) {
		for _, afterEffect := range []bool{false, true} {
			t.Run(fmt.Sprintf("step%d/effect=%v", k+1, afterEffect), func(t *testing.T) {
				w := newWorld(t)
				start := w.state(t)
				err := w.journal().Run(context.Background(), failAt(w.updateTx(), w.kinds(), k, afterEffect))
				var je *Error
				if !errors.As(err, &je) {
					t.Fatalf("Run = %v, want a *journal.Error", err)
				}
				if !errors.Is(err, errBoom) || je.Committed || je.Kept || je.Undo != nil {
					t.Errorf("error %+v", je)
				}
				if want := w.updateTx().Steps[k].String(); je.Step != want {
					t.Errorf("error names step %q, want %q", je.Step, want)
				}
				if d := diffState(w.state(t), start); d != "" {
					t.Errorf("not undone:\n%s", d)
				}
				if w.journalExists(t) {
					t.Error("the journal is left after a rollback")
				}
			})
		}
	}
}

func TestFailureAfterCommitIsFinishedByRecover(t *testing.T) {
	final := finalState(t)
	tx := newWorld(t).updateTx()
	for i := range tx.AfterCommit {
		for _, afterEffect := range []bool{false, true} {
			t.Run(fmt.Sprintf("step%d/effect=%v", len(tx.Steps)+i+1, afterEffect), func(t *testing.T) {
				w := newWorld(t)
				err := w.journal().Run(context.Background(), failAt(w.updateTx(), w.kinds(), len(tx.Steps)+i, afterEffect))
				var je *Error
				if !errors.As(err, &je) || !je.Committed || !je.Kept || !errors.Is(err, errBoom) {
					t.Fatalf("Run = %#v", err)
				}
				if !strings.Contains(err.Error(), "imgbase recover") {
					t.Errorf("message does not say what to do: %v", err)
				}
				if !w.journalExists(t) {
					t.Fatal("no journal left for Recover")
				}
				// A new transaction must wait for the recovery.
				var pe *PendingError
				if err := w.journal().Run(context.Background(), w.updateTx()); !errors.As(err, &pe) || pe.Tx != "update" {
					t.Errorf("second Run = %v, want a *PendingError", err)
				}
				out, err := w.journal().Recover(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				// Only the failed step and those after it are done again.
				var want []string
				for _, s := range tx.AfterCommit[i:] {
					want = append(want, "do "+s.String())
				}
				if out.RolledBack || out.Tx != "update" || strings.Join(out.Steps, "\n") != strings.Join(want, "\n") {
					t.Errorf("outcome %+v, want steps %q", out, want)
				}
				if d := diffState(w.state(t), final); d != "" {
					t.Errorf("not finished:\n%s", d)
				}
				if out, err := w.journal().Recover(context.Background()); out != nil || err != nil {
					t.Errorf("second Recover = %+v, %v; want nothing", out, err)
				}
			})
		}
	}
}

func TestFailedUndoKeepsTheJournalForRecover(t *testing.T) {
	w := newWorld(t)
	start := w.state(t)
	j := w.journal()
	// The layer's removal fails once (busy), then works.
	real := j.Kinds["create-layer"]
	busy := true
	j.Kinds["create-layer"] = Kind{Do: real.Do, Undo: func(ctx context.Context, a Args) error {
		if busy {
			busy = false
			return errors.New("logical volume in use")
		}
		return real.Undo(ctx, a)
	}}
	err := j.Run(context.Background(), failAt(w.updateTx(), j.Kinds, 6, false))
	var je *Error
	if !errors.As(err, &je) || je.Undo == nil || !je.Kept {
		t.Fatalf("Run = %v", err)
	}
	if !strings.Contains(err.Error(), "logical volume in use") {
		t.Errorf("message hides the undo failure: %v", err)
	}
	st := w.state(t)
	if _, ok := st["lv/Base-2-0+1"]; !ok {
		t.Fatal("the fake did not keep the layer")
	}
	if _, ok := st["lv/Base-2-0"]; ok {
		t.Error("the base was not removed after the layer's undo failed: the rollback stopped")
	}
	out, err := j.Recover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !out.RolledBack || strings.Join(out.Steps, "\n") != "undo create-layer lv=Base-2-0+1 origin=Base-2-0" {
		t.Errorf("outcome %+v; only the failed undo should be repeated", out)
	}
	if d := diffState(w.state(t), start); d != "" {
		t.Errorf("not undone:\n%s", d)
	}
	if w.journalExists(t) {
		t.Error("journal left")
	}
}

func TestCancelStopsAndUndoes(t *testing.T) {
	w := newWorld(t)
	start := w.state(t)
	ctx, cancel := context.WithCancel(context.Background())
	tx := w.updateTx()
	tx.Steps[3].Do = func(ctx context.Context) error {
		cancel() // SIGINT while the layer is being made
		return w.kinds()["create-layer"].Do(ctx, tx.Steps[3].Args)
	}
	err := w.journal().Run(ctx, tx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	if d := diffState(w.state(t), start); d != "" {
		t.Errorf("not undone:\n%s", d)
	}
}

func TestCorruptJournalIsReported(t *testing.T) {
	valid := func() *record {
		w := newWorld(t)
		r := newRecord(w.updateTx(), "", testTime)
		return r
	}
	cases := map[string][]byte{
		"truncated": []byte(`{"version":1,"tx":"update","phase":"runn`),
		"empty":     {},
		"garbage":   []byte("\x00\x00\x00"),
		"version": func() []byte {
			r := valid()
			r.Version = 2
			return mustMarshal(t, r)
		}(),
		"committed with a step pending": func() []byte {
			r := valid()
			r.Phase = phaseCommitted
			return mustMarshal(t, r)
		}(),
		"two steps trying": func() []byte {
			r := valid()
			r.Steps[0].State, r.Steps[1].State = stateTrying, stateTrying
			return mustMarshal(t, r)
		}(),
		"done after pending": func() []byte {
			r := valid()
			r.Steps[2].State = stateDone
			return mustMarshal(t, r)
		}(),
		"unknown state": func() []byte {
			r := valid()
			r.Steps[0].State = "half"
			return mustMarshal(t, r)
		}(),
		"unknown phase": func() []byte {
			r := valid()
			r.Phase = "maybe"
			return mustMarshal(t, r)
		}(),
		"after-commit step begun before commit": func() []byte {
			r := valid()
			r.AfterCommit[0].State = stateDone
			return mustMarshal(t, r)
		}(),
		"unknown field": []byte(`{"version":1,"tx":"update","phase":"running","steps":[],"after_commit":[],"extra":1}`),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			start := w.state(t)
			j := w.journal()
			if err := os.WriteFile(j.Path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			var ce *CorruptError
			if _, err := j.Recover(context.Background()); !errors.As(err, &ce) || ce.Path != j.Path {
				t.Errorf("Recover = %v, want a *CorruptError", err)
			}
			if err := j.Run(context.Background(), w.updateTx()); !errors.As(err, &ce) {
				t.Errorf("Run = %v, want a *CorruptError", err)
			}
			if got, _ := os.ReadFile(j.Path); !bytes.Equal(got, data) {
				t.Error("the corrupt journal was changed")
			}
			if d := diffState(w.state(t), start); d != "" {
				t.Errorf("world changed:\n%s", d)
			}
		})
	}
}

func TestRecoverRefusesUnknownKindsBeforeActing(t *testing.T) {
	w := newWorld(t)
	j := w.journal()
	if err := j.Run(context.Background(), failAt(w.updateTx(), j.Kinds, 8, false)); err == nil {
		t.Fatal("want the after-commit failure")
	}
	st := w.state(t)
	older := w.journal()
	delete(older.Kinds, "remove-base")
	if _, err := older.Recover(context.Background()); err == nil || !strings.Contains(err.Error(), `"remove-base"`) {
		t.Errorf("Recover without the kind = %v", err)
	}
	if d := diffState(w.state(t), st); d != "" || !w.journalExists(t) {
		t.Errorf("Recover acted anyway:\n%s", d)
	}
}

func TestRunRefusesPlansRecoverCouldNotReplay(t *testing.T) {
	w := newWorld(t)
	start := w.state(t)
	for name, tx := range map[string]Tx{
		"unknown kind":                   {Name: "update", Steps: []Step{{Kind: "create-base"}, {Kind: "format-disk"}}},
		"no Do":                          {Name: "update", Steps: []Step{{Kind: "write-image"}}},
		"after commit without kind's Do": {Name: "update", AfterCommit: []Step{{Kind: "write-image", Do: func(context.Context) error { return nil }}}},
		"no name":                        {Steps: []Step{{Kind: "create-base"}}},
	} {
		if err := w.journal().Run(context.Background(), tx); err == nil {
			t.Errorf("%s: Run accepted it", name)
		}
	}
	if d := diffState(w.state(t), start); d != "" || w.journalExists(t) {
		t.Errorf("a refused plan changed the world:\n%s", d)
	}
}

func TestDryRunWritesNoJournal(t *testing.T) {
	w := newWorld(t)
	var out bytes.Buffer
	j := w.journal()
	j.DryOut = &out
	var done []string
	tx := w.updateTx()
	for i := range tx.Steps {
		s := &tx.Steps[i]
		s.Do = func(context.Context) error { done = append(done, s.Kind); return nil }
	}
	for _, k := range []string{"remove-base", "write-report"} {
		j.Kinds[k] = Kind{Do: func(context.Context, Args) error { done = append(done, k); return nil }}
	}
	if err := j.Run(context.Background(), tx); err != nil {
		t.Fatal(err)
	}
	want := `# update: step 1/10 create-base lv=Base-2-0
# update: step 2/10 write-image lv=Base-2-0
# update: step 3/10 seal-base lv=Base-2-0
# update: step 4/10 create-layer lv=Base-2-0+1 origin=Base-2-0
# update: step 5/10 new-uuid lv=Base-2-0+1
# update: step 6/10 migrate-etc from=Base-1-0+1 to=Base-2-0+1
# update: step 7/10 boot-entry layer=Base-2-0+1
# update: step 8/10 set-default layer=Base-2-0+1 previous=Base-1-0+1
# update: commit
# update: step 9/10 remove-base lv=Base-0-9
# update: step 10/10 write-report layer=Base-2-0+1
`
	if out.String() != want {
		t.Errorf("dry run printed:\n%s\nwant:\n%s", out.String(), want)
	}
	if len(done) != 10 {
		t.Errorf("dry run did %v", done)
	}
	if w.journalExists(t) {
		t.Error("dry run wrote a journal")
	}
}

func TestDryRunRefusesWhileAJournalIsLeft(t *testing.T) {
	w := newWorld(t)
	j := w.journal()
	if err := j.Run(context.Background(), failAt(w.updateTx(), j.Kinds, 8, false)); err == nil {
		t.Fatal("want the after-commit failure")
	}
	var out bytes.Buffer
	j.DryOut = &out
	var pe *PendingError
	if err := j.Run(context.Background(), w.updateTx()); !errors.As(err, &pe) {
		t.Errorf("dry Run = %v, want a *PendingError", err)
	}
	if out.Len() != 0 {
		t.Errorf("dry run printed %q", out.String())
	}
}

func TestRunCreatesTheJournalDirectory(t *testing.T) {
	w := newWorld(t)
	j := w.journal()
	j.Path = w.path("var/lib/imgbase/journal.json")
	var seen string
	tx := Tx{Name: "t", Steps: []Step{{Kind: "create-base", Args: Args{"lv": "X"}, Do: func(context.Context) error {
		data, err := os.ReadFile(j.Path)
		seen = string(data)
		return err
	}}}}
	if err := j.Run(context.Background(), tx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(seen, `"state": "trying"`) {
		t.Errorf("journal during the step:\n%s", seen)
	}
}

// BenchmarkRun measures the journal's own cost for a ten-step update with
// steps that do nothing: one durable record per step.
func BenchmarkRun(b *testing.B) {
	dir := b.TempDir()
	kinds := Kinds{"noop": {Do: func(context.Context, Args) error { return nil }, Undo: func(context.Context, Args) error { return nil }}}
	var tx Tx
	tx.Name = "update"
	for i := range 8 {
		tx.Steps = append(tx.Steps, Step{Kind: "noop", Args: Args{"lv": fmt.Sprint("Base-2-0+", i)}})
	}
	tx.AfterCommit = []Step{{Kind: "noop"}, {Kind: "noop"}}
	j := &Journal{Path: dir + "/journal.json", Kinds: kinds}
	for b.Loop() {
		if err := j.Run(context.Background(), tx); err != nil {
			b.Fatal(err)
		}
	}
}

func TestRecoverThatFailsKeepsTheJournal(t *testing.T) {
	final := finalState(t)
	w := newWorld(t)
	j := w.journal()
	if err := j.Run(context.Background(), failAt(w.updateTx(), j.Kinds, 8, false)); err == nil {
		t.Fatal("want the after-commit failure")
	}
	broken := w.journal()
	broken.Kinds["remove-base"] = Kind{Do: func(context.Context, Args) error { return errBoom }}
	out, err := broken.Recover(context.Background())
	var je *Error
	if !errors.As(err, &je) || !je.Committed || !errors.Is(err, errBoom) || out == nil || out.RolledBack {
		t.Fatalf("Recover = %+v, %v", out, err)
	}
	if !w.journalExists(t) {
		t.Fatal("a failed Recover removed the journal")
	}
	if _, err := w.journal().Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := diffState(w.state(t), final); d != "" {
		t.Errorf("not finished:\n%s", d)
	}
}

// layer --add snapshots the running layer while its journal is in it: the
// new layer holds a copy of a transaction that is not its own. Booted, its
// Recover must leave every LV alone (undoing the copy removed the layer
// itself), and a new Run there must not be refused for it.
func TestACopiedJournalIsSetAsideNotReplayed(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	j := w.journal()
	j.Root = "uuid-of-the-old-layer"
	// Cut after the second step: Recover from the same root would undo it.
	if err := j.Run(ctx, failAt(w.updateTx(), w.kinds(), 2, true)); err == nil {
		t.Fatal("the failing run succeeded")
	}
	before := w.state(t)
	// Put back the journal a crash would have left (Run undid and removed it).
	r := newRecord(w.updateTx(), "uuid-of-the-old-layer", testTime)
	r.Steps[0].State, r.Steps[1].State = stateDone, stateTrying
	if err := j.write(r); err != nil {
		t.Fatal(err)
	}
	copied := w.journal()
	copied.Root = "uuid-of-the-new-layer"
	if out, err := copied.Recover(ctx); out != nil || err != nil {
		t.Fatalf("Recover of a copied journal = %+v, %v; want nothing done", out, err)
	}
	if d := diffState(w.state(t), before); d != "" {
		t.Errorf("Recover of a copied journal changed the world:\n%s", d)
	}
	if w.journalExists(t) {
		t.Error("the copied journal is still where Recover and the boot unit look")
	}
	if _, err := os.Stat(w.path("var/journal.json" + CopiedSuffix)); err != nil {
		t.Errorf("the copied journal was not kept aside: %v", err)
	}

	// Run sets a copy aside too, and goes on.
	if err := j.write(r); err != nil {
		t.Fatal(err)
	}
	if err := copied.Run(ctx, w.updateTx()); err != nil {
		t.Fatalf("Run beside a copied journal: %v", err)
	}

	// From the root that wrote it, the journal is replayed as ever.
	w2 := newWorld(t)
	own := w2.journal()
	own.Root = "uuid-of-the-old-layer"
	if err := own.write(r); err != nil {
		t.Fatal(err)
	}
	if out, err := own.Recover(ctx); err != nil || out == nil || !out.RolledBack {
		t.Errorf("Recover from the journal's own root = %+v, %v; want it undone", out, err)
	}
}
