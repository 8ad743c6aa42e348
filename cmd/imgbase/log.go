package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/imgbase/imgbase/internal/sha256x"
)

// logFile is where every command that changes the system leaves its trace
// (the file oVirt's imgbased wrote): what was asked, each command run with
// its exit status and duration, and how it ended. An admin asking "what
// did the update at 3 a.m. do" reads it; --debug shows the same on stderr.
const logFile = "var/log/imgbased.log"

// openLog starts the trace in path. The trace must never stop the work:
// when the file cannot be written, a warning says so and the command goes on.
func (a *app) openLog(path string) {
	w := appendFile(path)
	err := os.MkdirAll(filepath.Dir(path), 0o755)
	if err == nil {
		_, err = w.Write(nil) // creates the file, or says why it cannot be
	}
	if err != nil {
		slog.New(a.stderrHandler()).Warn("cannot write the log file; this run is not logged there", "path", path, "err", err)
		return
	}
	a.log = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// On stderr too with --debug: the trace then shows what a run spends
	// before its first command and after its last.
	a.logger().Info("imgbase started", "args", strings.Join(a.args, " "), "pid", os.Getpid(), "version", version)
}

// appendFile opens the file for each record: a volume mounted over
// /var/log while imgbase runs (volume --create /var/log) gets the rest of
// the trace, not the file hidden under it.
type appendFile string

func (f appendFile) Write(p []byte) (int, error) {
	fd, err := os.OpenFile(string(f), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return 0, err
	}
	n, err := fd.Write(p)
	if cerr := fd.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// closeLog ends the trace with the command's outcome and imgbase's own
// peak memory (the kernel's count, not a sample: make bench reads it here
// instead of polling /proc while it times the command).
func (a *app) closeLog(err error) {
	if a.log == nil {
		return
	}
	attrs := []any{slog.Duration("duration", time.Since(a.start)), slog.Int64("maxrss_kib", maxRSS())}
	if s := sha256x.Chosen(); s != "" {
		// Which SHA-256 hashed this run's long inputs, and the timing
		// that chose it.
		attrs = append(attrs, slog.String("sha256", s))
	}
	if err != nil {
		a.log.Error("imgbase failed", append([]any{"err", err}, attrs...)...)
	} else {
		a.logger().Info("imgbase finished", attrs...)
	}
	a.log = nil
}

// maxRSS is the process's peak resident set in KiB (Linux's ru_maxrss),
// its children (lvm2 and the other tools) not counted; 0 when unknown.
func maxRSS() int64 {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Maxrss
}
