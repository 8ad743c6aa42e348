package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/imgbase/imgbase/internal/boot"
	"github.com/imgbase/imgbase/internal/boot/efivar"
	"github.com/imgbase/imgbase/internal/command"
	"github.com/imgbase/imgbase/internal/config"
	"github.com/imgbase/imgbase/internal/filesystem"
	"github.com/imgbase/imgbase/internal/hooks"
	"github.com/imgbase/imgbase/internal/host"
	"github.com/imgbase/imgbase/internal/system"
	"github.com/spf13/cobra"
)

// environment is what a command reaches of the machine; tests replace it.
type environment struct {
	Runner     command.Runner
	Root       string
	RootDevice func() (int, int, error)
	RootFSType func() string
	MountDir   string
}

// session is one command's view of the host, with the lock it holds.
type session struct {
	ctx     context.Context
	host    *host.Host
	boot    host.BootManager
	cfg     *config.Config
	release func()
}

func (s *session) close() {
	if s.release != nil {
		s.release()
	}
}

// open prepares the host for one command. Commands that change the system
// take the lock unless they only print what they would do.
func (a *app) open(ctx context.Context, mutating bool) (*session, error) {
	if a.env == nil && os.Geteuid() != 0 {
		return nil, fmt.Errorf("imgbase must run as root: try 'sudo imgbase %s'", strings.Join(a.args, " "))
	}
	root := "/"
	if a.env != nil {
		root = a.env.Root
	}
	if mutating && !a.dry {
		a.openLog(filepath.Join(root, logFile))
	}
	log := a.logger()
	env := a.env
	if env == nil {
		env = &environment{
			Runner:     command.Exec{Log: log},
			Root:       "/",
			RootDevice: host.RootDevice("/"),
			RootFSType: host.RootFSType,
			MountDir:   "/run/imgbase/mnt",
		}
	}
	cfg, err := a.loadConfig()
	if err != nil {
		return nil, err
	}
	runner := env.Runner
	if a.dry {
		runner = &command.Dry{Next: runner, Out: a.stdout}
	}
	h := &host.Host{System: system.System{
		Run: runner, Log: log, Out: a.stdout, Root: env.Root,
		RootDevice: env.RootDevice, RootFSType: env.RootFSType, MountDir: env.MountDir,
		DirectMount: env.Root == "/",
	}}
	bootDir := filepath.Join(env.Root, "boot")
	places := boot.Locate(env.Root, h.BootMounts(ctx))
	bm := boot.NewAt(places, log)
	bm.Run = runner
	if env.Root == "/" {
		bm.BootFS = func(dir string) (string, string, bool) {
			sb, ok := filesystem.Mounted(dir)
			return sb.UUID, sb.Type, ok
		}
	}
	bm.Less = layerLess
	// The guard watches where the entries are ("/boot", "/boot/efi",
	// "/efi"), as the running system sees it.
	rel, err := filepath.Rel(env.Root, places.Boot)
	if err != nil {
		rel = "boot"
	}
	bm.Guard = h.BootGuard(filepath.Join("/", rel))
	if a.dry {
		bm.Dry = a.stdout
	}
	if env.Root != "/" {
		bm.Cmdline = filepath.Join(env.Root, "proc/cmdline")
		bm.BootIDPath = filepath.Join(env.Root, "proc/sys/kernel/random/boot_id")
		bm.EFI = efivar.Store{Dir: filepath.Join(env.Root, efivar.Dir)}
	}
	h.Hooks = &hooks.Hooks{Dir: filepath.Join(env.Root, "etc/imgbased/hooks.d"), Run: runner, Log: log}
	s := &session{ctx: ctx, host: h, cfg: cfg, boot: host.BootManager{M: bm, HostBoot: bootDir}}
	h.Boot = s.boot
	if mutating && !a.dry {
		release, err := a.lock(ctx)
		if err != nil {
			return nil, err
		}
		s.release = release
	}
	return s, nil
}

func (a *app) lockWait() (time.Duration, error) {
	d, err := time.ParseDuration(a.lockTimeout)
	if err != nil || d < 0 {
		return 0, usagef("cannot read --lock-timeout %q: use a duration such as 30s or 2m", a.lockTimeout)
	}
	return d, nil
}

// printJSON writes v as indented JSON.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printf writes a human line, suppressed in --json mode.
func (a *app) printf(format string, args ...any) {
	if a.json {
		return
	}
	fmt.Fprintf(a.stdout, format, args...)
}

// layerLess orders layers by base NVR (rpmvercmp), then layer number.
func layerLess(a, b string) bool { return boot.LayerLess(a, b) }

// withSession is a RunE that opens a session (taking the lock when
// mutating) around fn.
func (a *app) withSession(mutating bool, fn func(*cobra.Command, *session) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		s, err := a.open(cmd.Context(), mutating)
		if err != nil {
			return err
		}
		defer s.close()
		return fn(cmd, s)
	}
}
