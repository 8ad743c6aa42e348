// Package journal makes a change of several steps crash-safe: imgbase's
// update (create a base, write the image, seal it, add a layer, carry /etc
// over, write its boot entry, make it the default, collect old bases) either
// happens whole or not at all, even across kill -9 or a power cut.
//
// Vocabulary. A transaction (Tx) is a named list of steps planned up front
// and cut in two by its commit point: Steps before it, AfterCommit after it.
// A step has a kind, the name under which its implementation is registered
// in Kinds, and Args: everything its Undo needs (LV names, paths, the entry
// that was the default), known before the step starts. Every Undo must be
// idempotent: it may run after a crash in the middle of Do (remove an LV that
// may or may not exist), and again after a crash in the middle of a
// rollback. Steps after the commit must be idempotent too, for the same
// reason.
//
// Lifecycle. Run writes the whole plan to the journal file with its first
// step "trying", then before each later step records "trying k" (and with
// it the step before "done"). After the last step before the commit point
// it records "committed" (and the first step after it "trying"), does the
// steps after it the same way, and deletes the file. Each record is one
// atomic rewrite of the file (internal/atomicfile), so the file always
// holds one of the records.
//
// The rule for an interrupted transaction is the one rule of this package:
// before the commit everything is undone, after it everything is finished.
// An error before the commit undoes the step being tried and every done step
// in reverse order, recording each as undone, and deletes the file. Recover,
// on the next run or at boot, applies the same rule to a file left behind by
// a crash: it undoes (or continues a rollback cut short), or finishes the
// steps after the commit with their registered Do. Recover reads only the
// file and the Kinds, never closures, so a journal written by one process is
// replayed by another. An Undo or finishing step that fails leaves the file
// in place for the next Recover.
//
// A journal file lives in the root filesystem whose system ran the
// transaction, and that root can be copied while the file is there: layer
// --add snapshots the running layer in the middle of its own transaction.
// Undoing the copy's transaction from the new layer would remove LVs of
// another system's making (the very layer that was added). So a journal
// records its Root, and Run and Recover set aside, unreplayed, a file
// recorded under another root.
//
// The journal is not a lock: the caller holds imgbase's lock
// (internal/lock) around Run and Recover.
package journal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/imgbase/imgbase/internal/atomicfile"
)

// DefaultPath is where imgbase keeps its journal.
const DefaultPath = "/var/lib/imgbase/journal.json"

// Args is the data a step records before it starts: what its Undo (and, after
// the commit, its Do) needs to work from the journal alone.
type Args map[string]string

// Kind is the registered implementation of one kind of step.
type Kind struct {
	// Do carries out a step from its Args alone. The kinds of steps after
	// the commit need it, since Recover finishes them; a step before the
	// commit may bring its own Step.Do instead, for what cannot be written
	// down (an open image, a progress bar).
	Do func(ctx context.Context, a Args) error
	// Undo takes a step back, whether its Do ran whole, in part or not at
	// all. Nil means there is nothing to take back (writing into an LV whose
	// creation's undo removes it). Undo is never called for steps after the
	// commit.
	Undo func(ctx context.Context, a Args) error
}

// Kinds maps kind names to their implementations. Run and Recover refuse a
// step whose kind is not in it.
type Kinds map[string]Kind

// Step is one step of a transaction.
type Step struct {
	Kind string
	Args Args
	// Do, when set, runs instead of the kind's Do in this process. Recover
	// never sees it.
	Do func(ctx context.Context) error
}

func (s Step) String() string { return describe(s.Kind, s.Args) }

// Tx is a transaction: Steps are undone on failure, AfterCommit steps are
// finished once the last of Steps is done.
type Tx struct {
	Name        string
	Steps       []Step
	AfterCommit []Step
}

// Journal runs transactions and recovers the one a crash left behind.
type Journal struct {
	// Path of the journal file; Run creates its directory.
	Path  string
	Kinds Kinds
	Log   *slog.Logger
	// Root identifies the root filesystem Path is in (the filesystem's
	// UUID: every layer gets its own). A file recorded under another Root
	// is a copy and is set aside (see the package doc). "" when unknown:
	// no file is recorded under it or set aside for it.
	Root string
	// DryOut, when set, makes Run a dry run: nothing is written to Path,
	// each step is announced on DryOut and done (a command.Dry runner
	// prints its commands), and nothing is undone on error.
	DryOut io.Writer

	// afterWrite, when set, is called after each record is written; tests
	// crash the process there to reach every point of a transaction.
	afterWrite func(r *record)
}

// Outcome says what Recover did with a journal left behind.
type Outcome struct {
	Tx      string
	Started time.Time
	// RolledBack is true when the transaction was undone, false when it was
	// finished.
	RolledBack bool
	// Steps lists what Recover did, e.g. "undo create-layer lv=Base-2-0+1".
	Steps []string
}

// PendingError refuses a new transaction while an interrupted one waits to
// be recovered.
type PendingError struct {
	Path    string
	Tx      string
	Started time.Time
}

func (e *PendingError) Error() string {
	return fmt.Sprintf("cannot start: transaction %s of %s was interrupted (journal %s); run 'imgbase recover' first",
		e.Tx, e.Started.UTC().Format(time.RFC3339), e.Path)
}

// CorruptError is a journal file that cannot be read as a journal. It is
// never ignored: the transaction it describes may have left objects behind.
type CorruptError struct {
	Path string
	Err  error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("cannot read journal %s: %v; check by hand what its transaction left (imgbase layout) before removing it", e.Path, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// Error is a transaction that failed at a step.
type Error struct {
	Tx   string
	Step string // the step that failed, as Step.String shows it
	// Committed is true when the step came after the commit: the change
	// took effect, and Recover finishes the remaining steps.
	Committed bool
	Err       error
	// Undo holds what could not be undone; the journal is then kept so
	// that Recover tries again.
	Undo error
	// Kept is true when the journal file was left for Recover.
	Kept bool
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Committed {
		fmt.Fprintf(&b, "%s took effect but step %s failed: %v", e.Tx, e.Step, e.Err)
	} else {
		fmt.Fprintf(&b, "cannot %s: step %s failed: %v", e.Tx, e.Step, e.Err)
		if e.Undo == nil {
			b.WriteString("; everything done before was undone")
		} else {
			fmt.Fprintf(&b, "; and could not undo all of it: %v", e.Undo)
		}
	}
	if e.Kept {
		b.WriteString("; run 'imgbase recover' to finish")
	}
	return b.String()
}

func (e *Error) Unwrap() []error {
	if e.Undo != nil {
		return []error{e.Err, e.Undo}
	}
	return []error{e.Err}
}

// Run carries out tx, recording each step in the journal before and after
// it. On an error before the commit it undoes what was done and returns an
// *Error; after the commit it stops, keeps the journal for Recover and
// returns an *Error with Committed set. It refuses to start while a journal
// is left behind (*PendingError, or *CorruptError).
func (j *Journal) Run(ctx context.Context, tx Tx) error {
	if err := j.check(tx); err != nil {
		return err
	}
	// A dry run refuses too, as the real one would.
	if r, err := j.load(); err == nil && !j.copied(r) {
		return &PendingError{Path: j.Path, Tx: r.Tx, Started: r.Started}
	} else if err == nil && j.DryOut == nil {
		if err := j.setAside(r); err != nil {
			return err
		}
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if j.DryOut != nil {
		return j.dryRun(ctx, tx)
	}
	if err := os.MkdirAll(filepath.Dir(j.Path), 0o700); err != nil {
		return fmt.Errorf("cannot start %s: %w", tx.Name, err)
	}
	r := newRecord(tx, j.Root, time.Now())
	// Each record is two fsyncs (the file, its directory), tens of
	// milliseconds on a thin LV: one record says a step is tried and the
	// one before it done, the first one carries the plan, the commit says
	// the last step is done. The record spared, "done k" before "trying
	// k+1", told Recover nothing: it undoes a step tried as it undoes one
	// done (Undo is idempotent), and a step after the commit it redoes
	// unless done.
	written := false
	for i := range r.Steps {
		s := &r.Steps[i]
		err := ctx.Err()
		if err == nil {
			s.State = stateTrying
			err = j.write(r)
		}
		if err != nil && !written {
			// Nothing was done yet; a half-written file cannot exist.
			return fmt.Errorf("cannot start %s: %w", tx.Name, err)
		}
		written = true
		if err == nil {
			j.log().Info("trying", "tx", r.Tx, "step", s.describe())
			err = j.do(ctx, tx.Steps[i], s)
		}
		if err != nil {
			undoErr := j.rollback(ctx, r, nil)
			return &Error{Tx: r.Tx, Step: s.describe(), Err: err, Undo: undoErr, Kept: undoErr != nil}
		}
		s.State = stateDone
	}
	r.Phase = phaseCommitted
	if len(r.AfterCommit) > 0 {
		r.AfterCommit[0].State = stateTrying
	}
	if err := j.write(r); err != nil {
		if !written {
			return fmt.Errorf("cannot start %s: %w", tx.Name, err)
		}
		// Not committed: the rollback's records must read so.
		r.Phase = phaseRunning
		if len(r.AfterCommit) > 0 {
			r.AfterCommit[0].State = statePending
		}
		undoErr := j.rollback(ctx, r, nil)
		return &Error{Tx: r.Tx, Step: "commit", Err: err, Undo: undoErr, Kept: undoErr != nil}
	}
	j.log().Info("committed", "tx", r.Tx)
	return j.finish(ctx, r, tx.AfterCommit, nil)
}

// Recover finishes or undoes the transaction a crash left in the journal:
// undone when it stopped before its commit, finished after. It returns nil
// and no error when there is no journal, so a second Recover does nothing.
func (j *Journal) Recover(ctx context.Context) (*Outcome, error) {
	r, err := j.load()
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if j.copied(r) {
		return nil, j.setAside(r)
	}
	// Refuse before touching anything, rather than stop half-way.
	for _, s := range slices.Concat(r.Steps, r.AfterCommit) {
		if _, ok := j.Kinds[s.Kind]; !ok {
			return nil, fmt.Errorf("cannot recover %s: journal %s has a step of kind %q that this imgbase does not know", r.Tx, j.Path, s.Kind)
		}
	}
	for _, s := range r.AfterCommit {
		if j.Kinds[s.Kind].Do == nil {
			return nil, fmt.Errorf("cannot recover %s: step kind %q has no Do to finish it with", r.Tx, s.Kind)
		}
	}
	out := &Outcome{Tx: r.Tx, Started: r.Started}
	if r.Phase == phaseCommitted {
		j.log().Info("finishing an interrupted transaction", "tx", r.Tx, "journal", j.Path)
		if err := j.finish(ctx, r, nil, out); err != nil {
			return out, err
		}
		return out, nil
	}
	j.log().Info("undoing an interrupted transaction", "tx", r.Tx, "journal", j.Path)
	out.RolledBack = true
	if err := j.rollback(ctx, r, out); err != nil {
		return out, fmt.Errorf("cannot undo all of the interrupted %s: %w; fix it and run 'imgbase recover' again", r.Tx, err)
	}
	return out, nil
}

// check refuses a transaction that Recover could not replay.
func (j *Journal) check(tx Tx) error {
	if tx.Name == "" {
		return errors.New("cannot run a transaction without a name")
	}
	for i, s := range tx.Steps {
		k, ok := j.Kinds[s.Kind]
		if !ok {
			return fmt.Errorf("cannot run %s: step %d has the unregistered kind %q", tx.Name, i+1, s.Kind)
		}
		if s.Do == nil && k.Do == nil {
			return fmt.Errorf("cannot run %s: step %s has nothing to do", tx.Name, s)
		}
	}
	for _, s := range tx.AfterCommit {
		k, ok := j.Kinds[s.Kind]
		if !ok {
			return fmt.Errorf("cannot run %s: step after the commit has the unregistered kind %q", tx.Name, s.Kind)
		}
		if k.Do == nil {
			// Recover could not finish it.
			return fmt.Errorf("cannot run %s: step %s comes after the commit, so its kind needs a registered Do", tx.Name, s)
		}
	}
	return nil
}

func (j *Journal) dryRun(ctx context.Context, tx Tx) error {
	n := len(tx.Steps) + len(tx.AfterCommit)
	all := slices.Concat(tx.Steps, tx.AfterCommit)
	for i, s := range all {
		if i == len(tx.Steps) {
			fmt.Fprintf(j.DryOut, "# %s: commit\n", tx.Name)
		}
		fmt.Fprintf(j.DryOut, "# %s: step %d/%d %s\n", tx.Name, i+1, n, s)
		sr := stepRecord{Kind: s.Kind, Args: s.Args}
		if err := j.do(ctx, s, &sr); err != nil {
			return &Error{Tx: tx.Name, Step: s.String(), Err: err, Committed: i >= len(tx.Steps)}
		}
	}
	if len(tx.AfterCommit) == 0 {
		fmt.Fprintf(j.DryOut, "# %s: commit\n", tx.Name)
	}
	return nil
}

// do runs one step: the caller's Do when given, else the registered one.
func (j *Journal) do(ctx context.Context, s Step, sr *stepRecord) error {
	if s.Do != nil {
		return s.Do(ctx)
	}
	return j.Kinds[sr.Kind].Do(ctx, sr.Args)
}

// rollback undoes, in reverse order, every step that was tried or done,
// recording each as undone, and deletes the journal when all went well.
// It goes on after a failed Undo so that as little as possible is left;
// the failed steps stay in the journal for the next Recover.
func (j *Journal) rollback(ctx context.Context, r *record, out *Outcome) error {
	ctx = context.WithoutCancel(ctx)
	var errs []error
	if r.Phase != phaseRollingBack {
		r.Phase = phaseRollingBack
		if err := j.write(r); err != nil {
			errs = append(errs, err)
		}
	}
	for i := len(r.Steps) - 1; i >= 0; i-- {
		s := &r.Steps[i]
		if s.State != stateTrying && s.State != stateDone {
			continue
		}
		if undo := j.Kinds[s.Kind].Undo; undo != nil {
			j.log().Info("undoing", "tx", r.Tx, "step", s.describe())
			if err := undo(ctx, s.Args); err != nil {
				errs = append(errs, fmt.Errorf("cannot undo %s: %w", s.describe(), err))
				continue
			}
			if out != nil {
				out.Steps = append(out.Steps, "undo "+s.describe())
			}
		}
		s.State = stateUndone
		if err := j.write(r); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return j.remove()
}

// finish does the steps after the commit that are not done yet, then
// deletes the journal. live holds this process's steps (with their own Do)
// during Run; Recover passes none. As before the commit, the record that
// says a step is tried says the one before it done (the commit record
// tries the first), and the last one's "done" is the file's removal.
func (j *Journal) finish(ctx context.Context, r *record, live []Step, out *Outcome) error {
	for i := range r.AfterCommit {
		s := &r.AfterCommit[i]
		if s.State == stateDone {
			continue
		}
		err := ctx.Err()
		if err == nil && s.State != stateTrying {
			s.State = stateTrying
			err = j.write(r)
		}
		if err == nil {
			j.log().Info("trying", "tx", r.Tx, "step", s.describe())
			step := Step{Kind: s.Kind, Args: s.Args}
			if i < len(live) {
				step = live[i]
			}
			err = j.do(ctx, step, s)
		}
		if err != nil {
			return &Error{Tx: r.Tx, Step: s.describe(), Committed: true, Err: err, Kept: true}
		}
		s.State = stateDone
		if out != nil {
			out.Steps = append(out.Steps, "do "+s.describe())
		}
	}
	return j.remove()
}

func (j *Journal) write(r *record) error {
	data, err := r.marshal()
	if err != nil {
		return err
	}
	if err := atomicfile.Write(j.Path, data, 0o600); err != nil {
		return fmt.Errorf("cannot record step in journal: %w", err)
	}
	if j.afterWrite != nil {
		j.afterWrite(r)
	}
	return nil
}

func (j *Journal) load() (*record, error) {
	data, err := os.ReadFile(j.Path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("cannot read journal %s: %w", j.Path, err)
	}
	r, err := unmarshalRecord(data)
	if err != nil {
		return nil, &CorruptError{Path: j.Path, Err: err}
	}
	return r, nil
}

// copied reports whether r was recorded under another root than j's.
func (j *Journal) copied(r *record) bool {
	return r.Root != "" && j.Root != "" && r.Root != j.Root
}

// CopiedSuffix is added to the name of a journal set aside as a copy; it
// stays for an admin to read.
const CopiedSuffix = ".copied"

func (j *Journal) setAside(r *record) error {
	j.log().Warn("set aside a journal copied from another root filesystem: its transaction is that system's, not this one's",
		"tx", r.Tx, "recorded_root", r.Root, "root", j.Root, "kept_as", j.Path+CopiedSuffix)
	if err := os.Rename(j.Path, j.Path+CopiedSuffix); err != nil {
		return fmt.Errorf("cannot set aside the journal copied from root %s: %w", r.Root, err)
	}
	return atomicfile.SyncDir(filepath.Dir(j.Path))
}

func (j *Journal) remove() error {
	if err := os.Remove(j.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cannot remove journal: %w", err)
	}
	return atomicfile.SyncDir(filepath.Dir(j.Path))
}

func (j *Journal) log() *slog.Logger {
	if j.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return j.Log
}
