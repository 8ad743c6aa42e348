package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/imgbase/imgbase/internal/layout"
	"github.com/imgbase/imgbase/internal/volume"
)

func (a *app) layoutCommand() *cobra.Command {
	var (
		init, bases, layers, free bool
		from, units               string
	)
	c := &cobra.Command{
		Use:   "layout [--init [NVR] [--from /|VG/LV|/dev/…]] [--bases|--layers|--free-space]",
		Short: "Show the bases and layers, or create the layout from the running thin LV",
		Example: `  imgbase layout --init                     # from the thin LV holding /; NVR from /usr/share/imgbase/build/meta/nvr
  imgbase layout --init Base-1-0 --from /   # or name the base and the LV (/, VG/LV or /dev/VG/LV)
  imgbase layout
  imgbase layout --bases
  imgbase layout --layers
  imgbase layout --free-space --units g`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if n := countTrue(init, bases, layers, free); n > 1 {
				return usagef("--init, --bases, --layers and --free-space exclude each other")
			}
			if !init && (len(args) > 0 || from != "") {
				return usagef("an NVR and --from go with --init: 'imgbase layout --init [NVR] [--from /]'")
			}
			unit, err := layout.ParseUnit(units)
			if err != nil {
				return usagef("%v", err)
			}
			s, err := a.open(cmd.Context(), init)
			if err != nil {
				return err
			}
			defer s.close()
			if init {
				nvr := ""
				if len(args) == 1 {
					nvr = args[0]
				}
				res, err := s.host.Init(cmd.Context(), nvr, from)
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res)
				}
				if !a.dry {
					a.printf("Initialised %s: base %s (from %s), layer %s; reboot into %s to run on it\n", res.VG, res.Base, res.From, res.Layer, res.Layer)
					a.printf("To keep data that every layer shares out of the layers, create volumes, parents first:\n")
					for _, o := range volume.Defaults() {
						a.printf("  imgbase volume --create %-15s %-4s # %s\n", o.Path, o.Size, o.Why)
					}
				}
				return nil
			}
			t, err := s.host.Initialized(cmd.Context())
			if err != nil {
				return err
			}
			current := ""
			if l := s.host.CurrentLayer(t); l != nil {
				current = l.Name()
			}
			switch {
			case bases:
				var names []string
				for _, b := range t.Bases {
					names = append(names, b.Name())
				}
				return a.printList(names)
			case layers:
				var names []string
				for _, l := range t.Layers() {
					names = append(names, l.Name())
				}
				return a.printList(names)
			case free:
				if t.Pool == nil {
					return fmt.Errorf("cannot tell free space: %s has no pool tagged imgbased:pool", t.VG)
				}
				if a.json {
					return a.printJSON(map[string]any{"pool": t.Pool.Name, "size": t.Pool.Size, "free": t.Pool.DataFree(),
						"data_percent": t.Pool.DataPercent, "metadata_percent": t.Pool.MetaPercent})
				}
				a.printf("%s\n", unit.Format(t.Pool.DataFree()))
				return nil
			}
			if a.json {
				return a.printJSON(t.JSON(current))
			}
			a.printf("%s", t.Text(current))
			return nil
		},
	}
	f := c.Flags()
	f.BoolVar(&init, "init", false, "turn the thin LV holding / (or --from) into base NVR and its first layer")
	f.StringVar(&from, "from", "", "with --init: the LV to start from: /, VG/LV or /dev/VG/LV (default /)")
	f.BoolVar(&bases, "bases", false, "list the bases")
	f.BoolVar(&layers, "layers", false, "list the layers")
	f.BoolVar(&free, "free-space", false, "print the free space of the thin pool")
	f.StringVar(&units, "units", "b", "unit of --free-space: b, k, m or g")
	completeWords(c, "units", "b", "k", "m", "g")
	return c
}

func countTrue(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// printList prints names one per line, or as a JSON array.
func (a *app) printList(names []string) error {
	if a.json {
		if names == nil {
			names = []string{}
		}
		return a.printJSON(names)
	}
	for _, n := range names {
		a.printf("%s\n", n)
	}
	return nil
}
