package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/imgbase/imgbase/internal/manifest"
)

// manifestCommand is for image builds: it needs no LVM and takes no lock.
func (a *app) manifestCommand() *cobra.Command {
	var record, check bool
	c := &cobra.Command{
		Use:   "manifest [--record | --check] ROOT",
		Short: "Describe a tree (path, type, mode, owner, size, xattrs, link target, sha256), record it in the tree, or check the tree against it",
		Long: `An image build runs 'imgbase manifest --record ROOT' last, on the root of the image's tree: the
manifest is kept in ROOT/` + manifest.RecordPath + `. A base written from the image then holds it, so
'imgbase base --verify' can check the base, and an update by delta reads only the files that changed
instead of every file of both trees. A record is trusted for file contents only while the tree
matches it in everything else, so a tree changed after it was recorded is read in full.
Without a flag, the manifest of ROOT is printed in the record's format.`,
		Example: `  imgbase manifest --record /var/tmp/image-root   # as the image's build ends
  imgbase manifest --check /var/tmp/image-root    # every difference from the record; exit 1 on any
  imgbase manifest / | grep ' path=usr/sbin/'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if record && check {
				return usagef("say --record or --check, not both; see 'imgbase manifest --help'")
			}
			root := args[0]
			if st, err := os.Stat(root); err != nil || !st.IsDir() {
				return usagef("cannot describe %s: not a directory; give the root of the image's tree", root)
			}
			ctx := cmd.Context()
			switch {
			case record:
				m, err := manifest.Record(ctx, root)
				if err != nil {
					return err
				}
				if !a.json {
					a.printf("Recorded the manifest of %s (%d entries) in %s\n", root, len(m.Entries), filepath.Join(root, manifest.RecordPath))
				}
				return nil
			case check:
				n, diff, err := manifest.CheckRecord(ctx, root)
				if errors.Is(err, fs.ErrNotExist) {
					return errf("cannot check %s: it has no record; make one with 'imgbase manifest --record %s'", root, root)
				}
				if err != nil {
					return err
				}
				if a.json {
					if diff == nil {
						diff = []manifest.Difference{}
					}
					if err := a.printJSON(diff); err != nil {
						return err
					}
				} else {
					for _, d := range diff {
						a.printf("%s\n", d.String())
					}
				}
				if len(diff) > 0 {
					return errf("%s differs from its record in %d place(s)", root, len(diff))
				}
				if !a.json {
					a.printf("%s matches its record (%d entries)\n", root, n)
				}
				return nil
			}
			m, err := manifest.Build(ctx, root, manifest.BuildOptions{Exclude: []string{manifest.RecordDir}})
			if err != nil {
				return err
			}
			return manifest.Encode(a.stdout, m)
		},
	}
	f := c.Flags()
	f.BoolVar(&record, "record", false, "record the manifest of ROOT in ROOT/"+manifest.RecordPath)
	f.BoolVar(&check, "check", false, "check ROOT against the manifest it records, reading every file")
	return c
}
