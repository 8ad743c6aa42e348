// Package hooks runs the admin's executables around imgbase's verbs.
//
// Each event (a verb such as update or layer-add) has two directories under
// the hooks root, /etc/imgbased/hooks.d/pre-<event>/ and post-<event>/.
// Their executables run one after the other in lexical order of their
// names, with the names of the objects involved as arguments (the base,
// then the layer). A pre-hook can veto: the first one that fails stops the
// verb before it changes anything. A post-hook runs after the change is
// made and cannot undo it, so its failure is only reported.
//
// Hooks run through a command.Runner, so a dry run prints them, and under
// coreutils' timeout(1), which kills the hook's whole process group when
// its time is up (a hook's children would otherwise hold imgbase waiting on
// their output).
package hooks

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/imgbase/imgbase/internal/command"
)

// DefaultDir is where the admin puts hooks.
const DefaultDir = "/etc/imgbased/hooks.d"

// DefaultTimeout bounds one hook's run.
const DefaultTimeout = 5 * time.Minute

// killAfter is how long a hook may take to exit after SIGTERM before it is
// killed.
const killAfter = 10 * time.Second

// Event names a verb that hooks can watch.
type Event string

// The events imgbase raises. The arguments are the names involved: the
// base, then the layer, when there is one.
const (
	BaseAdd     Event = "base-add"     // base
	BaseRemove  Event = "base-remove"  // base
	LayerAdd    Event = "layer-add"    // base, layer
	LayerRemove Event = "layer-remove" // base, layer
	Update      Event = "update"       // new base, new layer
)

// Hooks runs the hooks found under Dir.
type Hooks struct {
	// Dir holds one directory per phase and event, e.g. pre-update.
	Dir string
	Run command.Runner
	Log *slog.Logger
	// Timeout bounds each hook; 0 means DefaultTimeout.
	Timeout time.Duration
}

// ErrWritable is a hook, or its directory, that users other than its
// owner may change: whoever can would run code as root through imgbase.
var ErrWritable = errors.New("it is writable by group or others, so they could run code as root through it; chmod go-w it")

// Error is a hook that failed, or a hooks directory that could not be read.
type Error struct {
	Phase string // e.g. pre-update
	Hook  string // the executable's path (the directory when it could not be read)
	// ExitCode is the hook's exit status, -1 when it did not run or was
	// killed.
	ExitCode int
	TimedOut bool
	// Stderr is the last line the hook wrote to its standard error.
	Stderr string
	Err    error
}

func (e *Error) Error() string {
	var what string
	switch {
	case e.TimedOut:
		what = "was stopped after its time limit"
	case e.ExitCode >= 0:
		what = fmt.Sprintf("exited %d", e.ExitCode)
	default:
		what = "could not run"
		if e.Err != nil {
			what += ": " + e.Err.Error()
		}
	}
	msg := fmt.Sprintf("%s hook %s %s", e.Phase, e.Hook, what)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Pre runs the pre-hooks of ev, stopping at the first that fails: it
// returns that failure as an *Error, and the verb must not go on.
func (h *Hooks) Pre(ctx context.Context, ev Event, names ...string) error {
	phase := "pre-" + string(ev)
	hooks, err := h.List(phase)
	if err != nil {
		return err
	}
	for _, hook := range hooks {
		if err := h.runOne(ctx, phase, hook, names); err != nil {
			return err
		}
	}
	return nil
}

// Post runs every post-hook of ev and returns the failures, which are
// warnings: the verb is done and stays done.
func (h *Hooks) Post(ctx context.Context, ev Event, names ...string) []*Error {
	phase := "post-" + string(ev)
	hooks, err := h.List(phase)
	if err != nil {
		var he *Error
		errors.As(err, &he)
		return []*Error{he}
	}
	var warnings []*Error
	for _, hook := range hooks {
		if err := h.runOne(ctx, phase, hook, names); err != nil {
			var he *Error
			errors.As(err, &he)
			warnings = append(warnings, he) // the caller reports them
		}
	}
	return warnings
}

// List returns the paths of the hooks that run in phase (e.g.
// "pre-update"), in order. A missing directory holds no hooks. Files that
// are not executable, hidden files, editor backups and package manager
// leftovers are skipped with a debug log. A hook or directory writable by
// group or others is an error (ErrWritable): skipping it would drop a veto
// the admin meant to run.
func (h *Hooks) List(phase string) ([]string, error) {
	dir := filepath.Join(h.Dir, phase)
	entries, err := os.ReadDir(dir) // sorted by name
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, &Error{Phase: phase, Hook: dir, ExitCode: -1, Err: err}
	}
	if info, err := os.Stat(dir); err == nil && info.Mode().Perm()&0o022 != 0 {
		return nil, &Error{Phase: phase, Hook: dir, ExitCode: -1, Err: ErrWritable}
	}
	var hooks []string
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if why := skipName(e.Name()); why != "" {
			h.log().Debug("skipping hook", "path", path, "why", why)
			continue
		}
		// Stat follows symlinks: a link to an executable is a hook.
		info, err := os.Stat(path)
		if err != nil {
			h.log().Warn("skipping hook", "path", path, "why", err)
			continue
		}
		if !info.Mode().IsRegular() {
			h.log().Debug("skipping hook", "path", path, "why", "not a regular file")
			continue
		}
		if info.Mode().Perm()&0o111 == 0 {
			h.log().Debug("skipping hook", "path", path, "why", "not executable")
			continue
		}
		if info.Mode().Perm()&0o022 != 0 {
			return nil, &Error{Phase: phase, Hook: path, ExitCode: -1, Err: ErrWritable}
		}
		hooks = append(hooks, path)
	}
	return hooks, nil
}

// skipSuffixes are left behind by editors and package managers; running
// an old copy of a hook next to the new one would be a surprise.
var skipSuffixes = []string{
	"~", ".rpmnew", ".rpmsave", ".rpmorig",
	".dpkg-old", ".dpkg-new", ".dpkg-dist", ".dpkg-tmp", ".dpkg-bak",
	".swp", ".bak", ".orig",
}

func skipName(name string) string {
	if strings.HasPrefix(name, ".") {
		return "hidden"
	}
	for _, s := range skipSuffixes {
		if strings.HasSuffix(name, s) {
			return "a backup (" + s + ")"
		}
	}
	return ""
}

func (h *Hooks) runOne(ctx context.Context, phase, hook string, names []string) error {
	limit := h.Timeout
	if limit <= 0 {
		limit = DefaultTimeout
	}
	secs := int64((limit + time.Second - 1) / time.Second)
	argv := append([]string{"timeout", "-k", strconv.FormatInt(int64(killAfter/time.Second), 10), strconv.FormatInt(secs, 10), hook}, names...)
	// The context is a last resort should timeout(1) itself hang.
	ctx, cancel := context.WithTimeout(ctx, limit+2*killAfter)
	defer cancel()
	h.log().Info("running hook", "phase", phase, "hook", hook, "args", names)
	start := time.Now()
	out, err := h.Run.Run(ctx, command.Change(argv...))
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if line != "" {
			h.log().Info("hook says", "hook", filepath.Base(hook), "line", line)
		}
	}
	if err == nil {
		return nil
	}
	he := &Error{Phase: phase, Hook: hook, ExitCode: -1, Err: err}
	var ce *command.Error
	if errors.As(err, &ce) {
		he.ExitCode = ce.ExitCode
		he.Stderr = lastLine(ce.Stderr)
	}
	// timeout(1) exits 124 when it stopped the hook with SIGTERM, 137 when
	// it had to kill it.
	if he.ExitCode == 124 || (he.ExitCode == 137 && time.Since(start) >= limit) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		he.TimedOut = true
	}
	return he
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return strings.TrimSpace(s[i+1:])
	}
	return s
}

func (h *Hooks) log() *slog.Logger {
	if h.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Log
}
