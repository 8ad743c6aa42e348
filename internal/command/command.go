// Package command is imgbase's one way of running the system's own tools
// (lvm2, e2fsprogs, xfsprogs, mount, GRUB tools).
//
// Every external process goes through a Runner. A Cmd says whether it changes
// the system (Mutating): the Dry runner passes read-only commands through, so
// that a dry run still sees the real layout, and prints mutating ones instead
// of running them. The Recorder in commandtest records every command for unit
// tests, which check exact command lines and count LVM processes.
package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Cmd is one process to run.
type Cmd struct {
	Argv []string
	// Mutating commands change the system; a dry run prints them and
	// does not run them.
	Mutating bool
	// Stdin, when set, is fed to the process.
	Stdin io.Reader
	// OKCodes lists non-zero exit codes that still mean success
	// (e2fsck exits 1 when it fixed something).
	OKCodes []int
}

// Read returns a read-only command.
func Read(argv ...string) Cmd { return Cmd{Argv: argv} }

// Change returns a mutating command.
func Change(argv ...string) Cmd { return Cmd{Argv: argv, Mutating: true} }

// String renders the command as a shell-like line, quoting words that need it.
func (c Cmd) String() string { return Join(c.Argv) }

// Runner runs commands. Run returns the command's standard output; a
// failure is an *Error.
type Runner interface {
	Run(ctx context.Context, c Cmd) ([]byte, error)
}

// Error is a command that could not be started or exited non-zero.
type Error struct {
	Argv     []string
	ExitCode int // -1 when the process did not run or was killed
	Stderr   string
	Err      error
}

func (e *Error) Error() string {
	if len(e.Argv) > 0 && errors.Is(e.Err, exec.ErrNotFound) {
		// The whole command line says nothing useful when the tool
		// itself is missing; the package to install does.
		return fmt.Sprintf("cannot run %s: it is not installed (install %s)", e.Argv[0], packageOf(e.Argv[0]))
	}
	msg := strings.TrimSpace(lastLine(e.Stderr))
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	if e.ExitCode >= 0 {
		return fmt.Sprintf("%s exited %d: %s", Join(e.Argv), e.ExitCode, msg)
	}
	return fmt.Sprintf("%s failed: %s", Join(e.Argv), msg)
}

func (e *Error) Unwrap() error { return e.Err }

// packageOf names the package that usually provides tool, for the hint
// given when it is missing.
func packageOf(tool string) string {
	switch {
	case strings.HasPrefix(tool, "lv"), strings.HasPrefix(tool, "vg"), strings.HasPrefix(tool, "pv"):
		return "lvm2"
	case strings.HasPrefix(tool, "xfs_"), tool == "mkfs.xfs":
		return "xfsprogs"
	case tool == "e2fsck", tool == "tune2fs", tool == "debugfs", tool == "resize2fs", strings.HasPrefix(tool, "mkfs.ext"):
		return "e2fsprogs"
	case tool == "bootctl", tool == "systemctl":
		return "systemd"
	case strings.HasPrefix(tool, "grub"):
		return "GRUB's tools"
	case strings.HasPrefix(tool, "thin_"):
		return "thin-provisioning-tools"
	case strings.HasPrefix(tool, "unsquashfs"), strings.HasPrefix(tool, "mksquashfs"):
		return "squashfs-tools"
	}
	return "the package that provides " + tool
}

// ExitCode returns the exit code of a command error wrapped in err, or -1.
func ExitCode(err error) int {
	var ce *Error
	if errors.As(err, &ce) {
		return ce.ExitCode
	}
	return -1
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		// lvm2 often prints warnings first and the real error last.
		return s[i+1:]
	}
	return s
}

// Exec runs commands for real with LC_ALL=C and logs each one at debug
// level with its exit status and duration.
type Exec struct {
	Log *slog.Logger
}

func (x Exec) Run(ctx context.Context, c Cmd) ([]byte, error) {
	if len(c.Argv) == 0 {
		return nil, errors.New("cannot run an empty command")
	}
	cmd := exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	// A child that keeps our pipes open must not hold Run after the
	// command itself has exited or been killed.
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.Stdin = c.Stdin
	start := time.Now()
	err := cmd.Run()
	code := 0
	if err != nil {
		code = -1
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
	}
	if x.Log != nil {
		x.Log.Debug("ran", "cmd", c.String(), "exit", code, "duration", time.Since(start).Round(time.Millisecond))
	}
	if err != nil && !okCode(c.OKCodes, code) {
		return stdout.Bytes(), &Error{Argv: c.Argv, ExitCode: code, Stderr: stderr.String(), Err: err}
	}
	return stdout.Bytes(), nil
}

func okCode(ok []int, code int) bool {
	for _, c := range ok {
		if c == code && code > 0 {
			return true
		}
	}
	return false
}

// Dry runs read-only commands with Next and prints mutating ones to Out
// instead of running them.
type Dry struct {
	Next Runner
	Out  io.Writer

	mu sync.Mutex
}

func (d *Dry) Run(ctx context.Context, c Cmd) ([]byte, error) {
	if !c.Mutating {
		return d.Next.Run(ctx, c)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintln(d.Out, c.String())
	return nil, nil
}

// IsDry reports whether r only prints what changes the system.
func IsDry(r Runner) bool {
	_, ok := r.(*Dry)
	return ok
}

// Join renders argv as one line that a POSIX shell would split back into
// the same words.
func Join(argv []string) string {
	var b strings.Builder
	for i, a := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(Quote(a))
	}
	return b.String()
}

// Quote makes s one shell word, single-quoting it unless it is made only
// of characters the shell takes literally.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_+=./:,@%^~", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
