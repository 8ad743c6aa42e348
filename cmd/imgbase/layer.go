package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

// errf is a plain failure (exit 1) with a one-line message.
func errf(format string, args ...any) error { return errors.New(fmt.Sprintf(format, args...)) }

func (a *app) layerCommand() *cobra.Command {
	var (
		add, latest, current bool
		remove, volumePath   string
	)
	c := &cobra.Command{
		Use:   "layer (--add [BASE|LAYER] | --remove LAYER | --latest | --current | --volume-path NAME)",
		Short: "Add, remove or find layers",
		Example: `  imgbase layer --add                     # on the newest layer of the newest base
  imgbase layer --add Base-1-0            # on a named base or layer
  imgbase --debug layer --add
  imgbase --debug --dry layer --add       # see what would run
  imgbase layer --latest
  imgbase layer --current
  imgbase layer --volume-path Base-1-0+1
  imgbase layer --remove Base-1-0+2       # never the running layer`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if countTrue(add, latest, current, remove != "", volumePath != "") != 1 {
				return usagef("say one of --add, --remove, --latest, --current or --volume-path; see 'imgbase layer --help'")
			}
			if !add && len(args) > 0 {
				return usagef("unexpected argument %q; see 'imgbase layer --help'", args[0])
			}
			s, err := a.open(cmd.Context(), add || remove != "")
			if err != nil {
				return err
			}
			defer s.close()
			ctx := cmd.Context()
			switch {
			case add:
				target := ""
				if len(args) == 1 {
					target = args[0]
				}
				res, err := s.host.AddLayer(ctx, target)
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res)
				}
				if !a.dry {
					a.printf("Added layer %s (snapshot of %s)\n", res.Name, res.Origin)
					if res.NoFS {
						a.printf("Note: %s holds no filesystem yet, so %s has no fstab and no boot entry\n", res.Origin, res.Name)
					}
				}
				return nil
			case remove != "":
				if err := s.host.RemoveLayer(ctx, remove); err != nil {
					return err
				}
				if !a.dry {
					a.printf("Removed layer %s\n", remove)
				}
				return nil
			}
			t, err := s.host.Initialized(ctx)
			if err != nil {
				return err
			}
			switch {
			case latest:
				l := t.LatestLayer()
				if l == nil {
					return errf("there is no layer yet; add one with 'imgbase layer --add'")
				}
				return a.printList([]string{l.Name()})
			case current:
				l := s.host.CurrentLayer(t)
				if l == nil {
					return errf("the running system is not on a layer (not booted into one yet?); see 'imgbase layout'")
				}
				return a.printList([]string{l.Name()})
			}
			lv := t.LV(volumePath)
			if lv == nil || (t.Base(volumePath) == nil && t.Layer(volumePath) == nil) {
				return errf("cannot find base or layer %q; see 'imgbase layout'", volumePath)
			}
			return a.printList([]string{lv.DevPath()})
		},
	}
	f := c.Flags()
	f.BoolVar(&add, "add", false, "add a layer on BASE or LAYER (default: on the newest layer of the newest base)")
	f.StringVar(&remove, "remove", "", "remove `LAYER` (not the running one)")
	f.BoolVar(&latest, "latest", false, "print the newest layer of the newest base")
	f.BoolVar(&current, "current", false, "print the running layer")
	f.StringVar(&volumePath, "volume-path", "", "print the device path of base or layer `NAME`")
	c.ValidArgsFunction = a.completeArgs(bases | layers)
	a.completeFlags(c, layers, "remove")
	a.completeFlags(c, bases|layers, "volume-path")
	return c
}
