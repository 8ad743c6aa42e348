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

	"github.com/spf13/cobra"
)

// version is set at build time.
var version = "dev"

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
	a := &app{stdout: stdout, stderr: stderr, env: env, args: args}
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

	debug, dry, json bool
	configPath       string
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
		Version:       version,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usagef("%v; see 'imgbase %s --help'", err, c.Name()) })
	pf := root.PersistentFlags()
	pf.BoolVar(&a.debug, "debug", false, "log each command run, with its exit status and duration, on stderr")
	pf.BoolVar(&a.dry, "dry", false, "print the commands that would change the system instead of running them")
	pf.BoolVar(&a.json, "json", false, "print listings as JSON")
	pf.StringVar(&a.configPath, "config", "/etc/imgbased.conf", "configuration file (its .d directory is read too)")
	pf.StringVar(&a.lockPath, "lock-file", "/run/imgbase.lock", "lock taken by commands that change the system")
	pf.StringVar(&a.lockTimeout, "lock-timeout", "60s", "how long to wait for another imgbase to finish")
	_ = pf.MarkHidden("lock-file")
	root.AddCommand(a.layoutCommand(), a.baseCommand(), a.layerCommand(), a.updateCommand(),
		a.bootCommand(), a.rollbackCommand(), a.checkCommand(), a.recoverCommand(), a.volumeCommand())
	return root
}

func (a *app) logger() *slog.Logger {
	level := slog.LevelWarn
	if a.debug {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	if !a.debug {
		// Without --debug only warnings show: keep them short.
		opts.ReplaceAttr = func(groups []string, attr slog.Attr) slog.Attr {
			if len(groups) == 0 && attr.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return attr
		}
	}
	h := slog.Handler(slog.NewTextHandler(a.stderr, opts))
	if a.log != nil {
		h = slog.NewMultiHandler(h, a.log.Handler())
	}
	return slog.New(h)
}
