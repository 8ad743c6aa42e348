package main

import (
	"github.com/spf13/cobra"

	"github.com/imgbase/imgbase/internal/image/progress"
	"github.com/imgbase/imgbase/internal/volume"
)

func (a *app) volumeCommand() *cobra.Command {
	var (
		create, list       bool
		remove, freeHidden string
	)
	c := &cobra.Command{
		Use:   "volume (--create PATH SIZE | --remove PATH | --list | --free-hidden PATH)",
		Short: "Manage volumes shared by every layer (/var, /var/log, /home …)",
		Long: `A volume is a thin LV mounted on a directory by every layer, so that its contents do not
change when another layer boots. --create moves the directory's contents into the new volume
(copied and verified; the old copy stays hidden under the mount until --free-hidden).`,
		Example: `  imgbase volume --create /var/log 8G
  imgbase volume --list
  imgbase volume --free-hidden /var/log
  imgbase volume --remove /var/log`,
		Args: cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if countTrue(create, list, remove != "", freeHidden != "") != 1 {
				return usagef("say one of --create, --remove, --list or --free-hidden; see 'imgbase volume --help'")
			}
			if create != (len(args) > 0) || (create && len(args) != 2) {
				return usagef("--create takes a path and a size: 'imgbase volume --create /var/log 8G'")
			}
			s, err := a.open(cmd.Context(), !list)
			if err != nil {
				return err
			}
			defer s.close()
			m := &volume.Manager{System: s.host.System}
			ctx := cmd.Context()
			switch {
			case list:
				vols, err := m.List(ctx)
				if err != nil {
					return err
				}
				if a.json {
					if vols == nil {
						vols = []volume.Volume{}
					}
					return a.printJSON(vols)
				}
				for _, v := range vols {
					state := "not mounted"
					if v.Mounted {
						state = "mounted on " + v.MountPoint
					}
					a.printf("%s\t%s\t%s\t%s used in the pool, %s\n", v.Path, v.LV, progress.Bytes(int64(v.Size)), progress.Bytes(int64(v.PoolUsed)), state)
				}
				return nil
			case create:
				res, err := m.Create(ctx, args[0], args[1])
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res)
				}
				if !a.dry {
					a.printf("Volume for %s created and mounted; every layer mounts it. The old contents stay hidden under it until 'imgbase volume --free-hidden %s'\n", args[0], args[0])
					for _, f := range res.Changed {
						a.printf("Changed while copying (its newest version stays hidden): %s\n", f)
					}
				}
				return nil
			case remove != "":
				res, err := m.Remove(ctx, remove)
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res)
				}
				if !a.dry {
					a.printf("Volume for %s removed; its contents are back in %s, the older directory is kept as %s\n", remove, remove, res.Old)
				}
				return nil
			}
			res, err := m.FreeHidden(ctx, freeHidden)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(res)
			}
			if !a.dry {
				a.printf("Freed %s hidden under %s\n", progress.Bytes(int64(res.Freed)), freeHidden)
			}
			return nil
		},
	}
	f := c.Flags()
	f.BoolVar(&create, "create", false, "create a volume for PATH of SIZE and move PATH's contents into it")
	f.StringVar(&remove, "remove", "", "move `PATH`'s contents back into the layer and remove its volume")
	f.BoolVar(&list, "list", false, "list the volumes")
	f.StringVar(&freeHidden, "free-hidden", "", "delete the old contents hidden under the volume mounted on `PATH`")
	a.completeFlags(c, volumes, "remove", "free-hidden")
	return c
}
