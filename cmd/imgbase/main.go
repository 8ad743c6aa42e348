// Command imgbase manages image-based root filesystems on LVM thin
// provisioning: read-only bases, writable layers, one boot entry per layer.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/imgbase/imgbase/internal/logfmt"
)

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// usageError is a command line imgbase cannot make sense of.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil)
	stop()
	os.Exit(code)
}

// run executes one imgbase command line and returns its exit code. env is
// nil for the real system; tests pass fakes.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, env *environment) int {
	a := &app{stdout: stdout, stderr: stderr, env: env, args: args, start: time.Now()}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	a.closeLog(err)
	if err == nil {
		return exitOK
	}
	msg := strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
	fmt.Fprintf(stderr, "imgbase: %s\n", msg)
	var ue *usageError
	if errors.As(err, &ue) || isFlagError(err) {
		return exitUsage
	}
	return exitFail
}

// isFlagError recognises cobra's and pflag's parse errors, which have no type.
func isFlagError(err error) bool {
	s := err.Error()
	for _, p := range []string{"unknown flag", "unknown shorthand flag", "flag needs an argument", "invalid argument", "unknown command", "accepts ", "requires at least", "bad flag syntax", "if any flags in the group"} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// app holds what every subcommand shares: global flags and the environment.
type app struct {
	stdout, stderr io.Writer
	env            *environment
	args           []string // the command line, for messages and the log
	start          time.Time

	debug, dry, json bool
	version          bool
	configPath       string
	logFormat        logFormat
	lockPath         string
	lockTimeout      string

	// log records, for a command that changes the system, everything
	// down to each command run in logFile; nil otherwise.
	log *slog.Logger
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "imgbase",
		Short: "Manage read-only bases and writable layers on LVM thin provisioning",
		Long: `imgbase keeps every OS image as a read-only base (a thin LV) and runs the system on a
writable layer (a thin snapshot of a base); each layer has its own boot entry.`,
		Example: `  imgbase layout --init                  # once: the running thin LV becomes the first base and layer
  imgbase layout                         # the bases and their layers
  imgbase update /var/tmp/node-4.5-1.squashfs.img
  imgbase boot --status
  imgbase rollback`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.NoArgs,
		// imgbase handles --version itself, for --json.
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.version {
				return a.printVersion()
			}
			return cmd.Help()
		},
	}
	root.Flags().BoolVar(&a.version, "version", false, "print the version, the commit and the Go version it was built with")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usagef("%v; see 'imgbase %s --help'", err, c.Name()) })
	pf := root.PersistentFlags()
	pf.BoolVar(&a.debug, "debug", false, "log each command run, with its exit status and duration, on stderr")
	pf.BoolVar(&a.dry, "dry", false, "print the commands that would change the system instead of running them")
	pf.BoolVar(&a.json, "json", false, "print listings as JSON")
	a.logFormat = "text"
	pf.Var(&a.logFormat, "log-format", "how notes and warnings on stderr are written: text (sentences) or json (one object a line)")
	pf.StringVar(&a.configPath, "config", "/etc/imgbased.conf", "configuration file (its .d directory is read too)")
	pf.StringVar(&a.lockPath, "lock-file", "/run/imgbase.lock", "lock taken by commands that change the system")
	pf.StringVar(&a.lockTimeout, "lock-timeout", "60s", "how long to wait for another imgbase to finish")
	_ = pf.MarkHidden("lock-file")
	completeWords(root, "log-format", "text", "json")
	root.AddCommand(a.layoutCommand(), a.baseCommand(), a.layerCommand(), a.updateCommand(), a.switchCommand(),
		a.bootCommand(), a.rollbackCommand(), a.checkCommand(), a.recoverCommand(), a.volumeCommand(), a.manifestCommand(), a.docsCommand())
	// The packages install the completion scripts (see __docs).
	root.CompletionOptions.HiddenDefaultCmd = true
	return root
}

// logger is where a command's notes go: stderr (and the log file when one
// is open).
func (a *app) logger() *slog.Logger {
	h := a.stderrHandler()
	if a.log != nil {
		h = slog.NewMultiHandler(h, a.log.Handler())
	}
	return slog.New(h)
}

// stderrHandler shows warnings as sentences for the admin; --debug shows
// everything as slog's key=value lines, --log-format json as JSON lines.
func (a *app) stderrHandler() slog.Handler {
	level := slog.LevelWarn
	if a.debug {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	switch {
	case a.logFormat == "json":
		return slog.NewJSONHandler(a.stderr, opts)
	case a.debug:
		return slog.NewTextHandler(a.stderr, opts)
	}
	return logfmt.New(a.stderr, "imgbase", level)
}

// logFormat is --log-format's value; a bad one is a usage error at parse time.
type logFormat string

func (f *logFormat) String() string { return string(*f) }
func (f *logFormat) Type() string   { return "text|json" }
func (f *logFormat) Set(s string) error {
	if s != "text" && s != "json" {
		return fmt.Errorf("use text or json")
	}
	*f = logFormat(s)
	return nil
}
