package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/imgbase/imgbase/internal/host"
	"github.com/imgbase/imgbase/internal/layout"
	"github.com/imgbase/imgbase/internal/volume"
)

func (a *app) layoutCommand() *cobra.Command {
	var (
		init, bases, layers, free, byBase bool
		from, units                       string
	)
	c := &cobra.Command{
		Use:   "layout [--init [NVR] [--from /|VG/LV|/dev/…]] [--bases|--layers|--free-space [--by-base]]",
		Short: "Show the bases and layers, or create the layout from the running thin LV",
		Example: `  imgbase layout --init                     # from the thin LV holding /; NVR from /usr/share/imgbase/build/meta/nvr
  imgbase layout --init Base-1-0 --from /   # or name the base and the LV (/, VG/LV or /dev/VG/LV)
  imgbase layout
  imgbase layout --bases
  imgbase layout --layers
  imgbase layout --free-space --units g
  imgbase layout --free-space --by-base --units m   # and what each base holds (needs thin_ls)`,
		Long: `Show the bases and layers, or create the layout from the running thin LV.

--free-space prints the thin pool's free space, one number. With --by-base it
prints that same first line, then one row per base: the bytes the base maps
in the pool, how many of them no other thin volume maps (EXCLUSIVE) and how
many it shares with its layers and the bases snapshotted from it (SHARED). A base made by a delta
update, or one with layers, shares most of its blocks, so its EXCLUSIVE is
small. The figures come from thin_ls (thin-provisioning-tools) reading a
metadata snapshot of the pool, taken and released around it; without
thin_ls, --by-base says it cannot and exits 1. --json adds a "bases" array.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if n := countTrue(init, bases, layers, free); n > 1 {
				return usagef("--init, --bases, --layers and --free-space exclude each other")
			}
			if byBase && !free {
				return usagef("--by-base goes with --free-space: 'imgbase layout --free-space --by-base'")
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
				// Read before anything is printed: when thin_ls cannot
				// answer, stdout stays empty rather than half a report.
				var usage []host.BaseUsage
				if byBase {
					if usage, err = s.host.BaseUsage(cmd.Context(), t); err != nil {
						return err
					}
				}
				if a.json {
					j := map[string]any{"pool": t.Pool.Name, "size": t.Pool.Size, "free": t.Pool.DataFree(),
						"data_percent": t.Pool.DataPercent, "metadata_percent": t.Pool.MetaPercent}
					if byBase {
						j["bases"] = usage
					}
					return a.printJSON(j)
				}
				a.printf("%s\n", unit.Format(t.Pool.DataFree()))
				if byBase {
					a.printf("%s", usageTable(usage, unit))
				}
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
	f.BoolVar(&byBase, "by-base", false, "with --free-space: also what each base maps and holds exclusively (needs thin_ls)")
	f.StringVar(&units, "units", "b", "unit of --free-space: b, k, m or g")
	completeWords(c, "units", "b", "k", "m", "g")
	return c
}

// usageTable renders one row per base, numbers right-aligned.
func usageTable(us []host.BaseUsage, unit layout.Unit) string {
	rows := [][]string{{"BASE", "MAPPED", "EXCLUSIVE", "SHARED"}}
	for _, u := range us {
		rows = append(rows, []string{u.Base, unit.Format(u.Mapped), unit.Format(u.Exclusive), unit.Format(u.Shared)})
	}
	width := make([]int, 4)
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len(c))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "%-*s", width[0], r[0])
		for i := 1; i < len(r); i++ {
			fmt.Fprintf(&b, "  %*s", width[i], r[i])
		}
		b.WriteString("\n")
	}
	return b.String()
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
