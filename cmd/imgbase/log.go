package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// logFile is where every command that changes the system leaves its trace
// (the file oVirt's imgbased wrote): what was asked, each command run with
// its exit status and duration, and how it ended. An admin asking "what
// did the update at 3 a.m. do" reads it; --debug shows the same on stderr.
const logFile = "var/log/imgbased.log"

// openLog starts the trace in path. The trace must never stop the work:
// when the file cannot be opened, a warning says so and the command goes on.
func (a *app) openLog(path string) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
		var f *os.File
		if f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640); err == nil {
			a.logFile = f
			a.log = slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
			a.log.Info("imgbase started", "args", strings.Join(a.args, " "), "pid", os.Getpid(), "version", version)
			return
		}
	}
	fmt.Fprintf(a.stderr, "imgbase: warning: cannot open %s; this run is not logged there\n", path)
}

// closeLog ends the trace with the command's outcome.
func (a *app) closeLog(err error) {
	if a.log == nil {
		return
	}
	if err != nil {
		a.log.Error("imgbase failed", "err", err)
	} else {
		a.log.Info("imgbase finished")
	}
	a.logFile.Close()
	a.log, a.logFile = nil, nil
}
