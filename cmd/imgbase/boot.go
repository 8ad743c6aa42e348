package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/imgbase/imgbase/internal/boot"
	"github.com/imgbase/imgbase/internal/host"
)

func (a *app) bootCommand() *cobra.Command {
	var (
		list, getDefault, setup, status, markGood bool
		setDefault, next, syncKernel, removed     string
	)
	c := &cobra.Command{
		Use:   "boot (--list | --get-default | --set-default LAYER | --next LAYER | --status | --setup | --mark-good | --sync-kernel[=VERSION] | --kernel-removed VERSION)",
		Short: "Choose which layer boots",
		Example: `  imgbase boot --list                    # * marks the default
  imgbase boot --get-default
  imgbase boot --set-default Base-1-0+1
  imgbase boot --next Base-2-0+1         # the next boot only
  imgbase boot --status                  # what boots, what is on trial, what happened at past boots
  imgbase boot --sync-kernel             # after a kernel or initramfs change in this layer (the kernel hooks run it)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if countTrue(list, getDefault, setup, status, markGood, setDefault != "", next != "", syncKernel != "", removed != "") != 1 {
				return usagef("say one of --list, --get-default, --set-default, --next, --status, --setup, --mark-good, --sync-kernel or --kernel-removed; see 'imgbase boot --help'")
			}
			if syncKernel != "" || removed != "" {
				version := removed
				if syncKernel != "" && syncKernel != newestKernel {
					version = syncKernel
				}
				return a.syncKernel(cmd.Context(), version, removed != "")
			}
			mutating := setup || markGood || setDefault != "" || next != ""
			s, err := a.open(cmd.Context(), mutating)
			if err != nil {
				return err
			}
			defer s.close()
			m := s.boot.M
			ctx := cmd.Context()
			switch {
			case list:
				entries, err := m.List()
				if err != nil {
					return err
				}
				def, _ := m.Default()
				if a.json {
					type row struct {
						Layer   string `json:"layer"`
						ID      string `json:"id"`
						Title   string `json:"title"`
						Path    string `json:"path"`
						Default bool   `json:"default"`
					}
					rows := []row{}
					for _, e := range entries {
						rows = append(rows, row{e.Layer, e.ID, e.Title, e.Path, e.Layer == def})
					}
					return a.printJSON(rows)
				}
				for _, e := range entries {
					mark := " "
					if e.Layer == def {
						mark = "*"
					}
					a.printf("%s %s\t%s\n", mark, e.Layer, e.Title)
				}
				return nil
			case getDefault:
				def, err := m.Default()
				if err != nil {
					return err
				}
				if def == "" {
					return errf("no default boot entry is set; set one with 'imgbase boot --set-default LAYER'")
				}
				return a.printList([]string{def})
			case setDefault != "":
				if err := a.requireLayer(s, setDefault); err != nil {
					return err
				}
				return m.SetDefault(ctx, setDefault)
			case next != "":
				if err := a.requireLayer(s, next); err != nil {
					return err
				}
				if err := m.SetNext(ctx, next); err != nil {
					return err
				}
				a.printf("The next boot (only) boots %s\n", next)
				return nil
			case setup:
				return m.Setup(ctx)
			case markGood:
				ev, err := m.MarkGood(ctx)
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(ev)
				}
				if ev.Kind != "" {
					a.printf("%s %s\n", ev.Kind, ev.Layer)
				}
				return nil
			}
			st, err := m.Status()
			if err != nil {
				return err
			}
			out := statusImages{Status: st}
			if t, err := s.host.Layout(s.ctx); err == nil {
				out.Images = layerImages(t, st.Running, st.Default, st.Next, st.Try)
			}
			if a.json {
				return a.printJSON(out)
			}
			a.printf("%s%s", st.String(), out.imagesText())
			return nil
		},
	}
	f := c.Flags()
	f.BoolVar(&list, "list", false, "list the boot entries (* marks the default)")
	f.BoolVar(&getDefault, "get-default", false, "print the layer that boots by default")
	f.StringVar(&setDefault, "set-default", "", "boot `LAYER` by default")
	f.StringVar(&next, "next", "", "boot `LAYER` at the next boot only")
	f.BoolVar(&status, "status", false, "say what boots, what is on trial, and what happened at past boots")
	f.BoolVar(&setup, "setup", false, "(re)wire the boot loader to read imgbase's entries")
	f.BoolVar(&markGood, "mark-good", false, "mark this boot good (run by imgbase-boot-success.service)")
	f.StringVar(&syncKernel, "sync-kernel", "", "copy the running layer's newest kernel (or `VERSION`, which a kernel hook names) and its initramfs from /boot to the layer's entry (run by the kernel and initramfs hooks)")
	f.Lookup("sync-kernel").NoOptDefVal = newestKernel
	f.StringVar(&removed, "kernel-removed", "", "kernel `VERSION` was removed from the running layer: its entry boots the newest one left (run by the kernel hook)")
	a.completeFlags(c, layers, "set-default", "next")
	return c
}

// newestKernel is --sync-kernel without a version.
const newestKernel = "newest"

// syncKernel runs from the distribution's kernel and initramfs hooks, on
// any machine with the package installed: before it opens anything it
// makes sure there is a layer to follow, and says why not otherwise (a
// hook that fails would fail the kernel package's installation).
func (a *app) syncKernel(ctx context.Context, version string, removed bool) error {
	if strings.ContainsAny(version, "/ ") || strings.HasPrefix(version, ".") {
		return usagef("cannot sync kernel %q: not a kernel version", version)
	}
	root := "/"
	if a.env != nil {
		root = a.env.Root
	} else if host.Chrooted() {
		a.printf("imgbase: running in a chroot; no boot entry to follow the kernel change\n")
		return nil
	}
	data, err := os.ReadFile(filepath.Join(root, "proc/cmdline"))
	if err != nil || !slices.ContainsFunc(strings.Fields(string(data)), func(s string) bool { return strings.HasPrefix(s, "img.bootid=") }) {
		a.printf("imgbase: this system was not booted from an imgbase layer (no img.bootid= on the kernel command line); no boot entry to follow the kernel change\n")
		return nil
	}
	s, err := a.open(ctx, true)
	if err != nil {
		return err
	}
	defer s.close()
	res, err := s.host.SyncKernel(ctx, s.boot, version, removed)
	if errors.Is(err, host.ErrNotOnLayer) {
		a.printf("imgbase: the root filesystem is not an imgbase layer; no boot entry to follow the kernel change\n")
		return nil
	}
	if err != nil {
		return err
	}
	if a.json {
		return a.printJSON(res)
	}
	if res.Changed {
		a.printf("%s boots kernel %s from /boot/%s/ now: %s\n", res.Layer, res.To, res.Layer, res.Reason)
	} else {
		a.printf("%s keeps booting kernel %s: %s\n", res.Layer, res.To, res.Reason)
	}
	return nil
}

// requireLayer refuses a name that is not a layer of the layout.
func (a *app) requireLayer(s *session, name string) error {
	t, err := s.host.Layout(s.ctx)
	if err != nil {
		return err
	}
	if t.Layer(name) == nil {
		return errf("cannot select %q: no such layer; see 'imgbase layout --layers'", name)
	}
	return nil
}

func (a *app) rollbackCommand() *cobra.Command {
	var to string
	c := &cobra.Command{
		Use:   "rollback [--to LAYER]",
		Short: "Make the previous layer that booted (or the named one) the default",
		Example: `  imgbase rollback                       # the newest layer before the default that has booted
  imgbase rollback --to Base-1-0+1`,
		Args: cobra.NoArgs,
		RunE: a.withSession(true, func(cmd *cobra.Command, s *session) error {
			if to != "" {
				if err := a.requireLayer(s, to); err != nil {
					return err
				}
			}
			res, err := s.boot.M.Rollback(cmd.Context(), to)
			if err != nil {
				return err
			}
			if res.NeverBooted {
				fmt.Fprintf(a.stderr, "imgbase: warning: %s has never booted as far as the boot history knows; if it fails, choose another layer in the boot menu\n", res.Layer)
			}
			if a.json {
				return a.printJSON(res)
			}
			a.printf("%s is now the default: %s\n", res.Layer, res.Reason)
			return nil
		}),
	}
	c.Flags().StringVar(&to, "to", "", "the `LAYER` to boot by default (default: the newest one before the current default that has booted)")
	a.completeFlags(c, layers, "to")
	return c
}

func (a *app) checkCommand() *cobra.Command {
	var deep bool
	c := &cobra.Command{
		Use:     "check [--deep]",
		Short:   "Report boot problems: layers without entries, entries without layers, missing kernels",
		Example: "  imgbase check\n  imgbase check --deep                   # also verify the running layer's base against its manifest\n  imgbase recover                        # repair what check reports",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// --deep mounts a base: it takes the lock like a change does.
			s, err := a.open(cmd.Context(), deep)
			if err != nil {
				return err
			}
			defer s.close()
			t, err := s.host.Layout(cmd.Context())
			if err != nil {
				return err
			}
			ps, err := s.boot.M.Check(cmd.Context(), host.BootLayers(t))
			if err != nil {
				return err
			}
			if !deep {
				if err := a.printProblems(ps); err != nil {
					return err
				}
				if len(ps) > 0 {
					return errf("%d boot problem(s) found; run 'imgbase recover' to repair them", len(ps))
				}
				return nil
			}
			cur := s.host.CurrentLayer(t)
			if cur == nil {
				return errf("cannot check the running layer's base: the running system is not on a layer")
			}
			res, err := s.host.VerifyBase(cmd.Context(), cur.Base.Name())
			if err != nil {
				return err
			}
			if a.json {
				if ps == nil {
					ps = []boot.Problem{}
				}
				if err := a.printJSON(struct {
					Problems []boot.Problem         `json:"problems"`
					Base     *host.BaseVerification `json:"base"`
				}{ps, res}); err != nil {
					return err
				}
			} else if err := a.printProblems(ps); err != nil {
				return err
			}
			var errs []error
			if len(ps) > 0 {
				errs = append(errs, errf("%d boot problem(s) found; run 'imgbase recover' to repair them", len(ps)))
			}
			return errors.Join(append(errs, a.reportVerification(res))...)
		},
	}
	c.Flags().BoolVar(&deep, "deep", false, "also verify the tree of the running layer's base against its manifest")
	return c
}

func (a *app) printProblems(ps []boot.Problem) error {
	if a.json {
		if ps == nil {
			ps = []boot.Problem{}
		}
		return a.printJSON(ps)
	}
	for _, p := range ps {
		a.printf("%s\n", p.String())
	}
	return nil
}

func (a *app) recoverCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "recover",
		Short:   "Repair what check reports and finish or undo an interrupted update",
		Example: "  imgbase recover                        # also run at boot by imgbase-recover.service",
		Args:    cobra.NoArgs,
		RunE: a.withSession(true, func(cmd *cobra.Command, s *session) error {
			out, err := s.host.Recover(cmd.Context())
			if err != nil {
				return err
			}
			if out != nil {
				what := "finished"
				if out.RolledBack {
					what = "undone"
				}
				a.printf("Interrupted %q (started %s) %s\n", out.Tx, out.Started.Format(time.RFC3339), what)
			}
			ps, err := s.host.RecoverBoot(cmd.Context(), s.boot)
			if err != nil {
				return err
			}
			if err := a.printProblems(ps); err != nil {
				return err
			}
			if len(ps) > 0 {
				return errf("%d boot problem(s) remain; see above", len(ps))
			}
			return nil
		}),
	}
}
