package journal_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/imgbase/imgbase/internal/command"
	"github.com/imgbase/imgbase/internal/command/commandtest"
	"github.com/imgbase/imgbase/internal/journal"
)

// An update whose layer cannot be made: the base created before it is
// removed again, from the LV name in the journal, and the journal is gone.
func Example() {
	dir, _ := os.MkdirTemp("", "journal")
	defer os.RemoveAll(dir)
	rec := &commandtest.Recorder{}
	rec.On("lvcreate --snapshot", "", &command.Error{Argv: []string{"lvcreate", "--snapshot"}, ExitCode: 5, Stderr: "Insufficient free space"})
	run := command.Runner(rec)

	// Kinds are registered by the program, so that `imgbase recover` can
	// undo from the journal alone what a killed `imgbase update` did.
	lvremove := func(ctx context.Context, a journal.Args) error {
		// Idempotent: --force, and a missing LV is no error (lvm2 exit 5
		// with "Failed to find" in a real implementation).
		_, err := run.Run(ctx, command.Change("lvremove", "--force", a["vg"]+"/"+a["lv"]))
		return err
	}
	kinds := journal.Kinds{
		"create-base": {
			Do: func(ctx context.Context, a journal.Args) error {
				_, err := run.Run(ctx, command.Change("lvcreate", "--thin", "-V", a["size"], "-n", a["lv"], a["vg"]+"/pool00"))
				return err
			},
			Undo: lvremove,
		},
		"create-layer": {
			Do: func(ctx context.Context, a journal.Args) error {
				_, err := run.Run(ctx, command.Change("lvcreate", "--snapshot", "-n", a["lv"], a["vg"]+"/"+a["origin"]))
				return err
			},
			Undo: lvremove,
		},
	}
	j := &journal.Journal{Path: filepath.Join(dir, "journal.json"), Kinds: kinds}
	err := j.Run(context.Background(), journal.Tx{
		Name: "update",
		Steps: []journal.Step{
			{Kind: "create-base", Args: journal.Args{"vg": "HostVG", "lv": "Base-2-0", "size": "4G"}},
			{Kind: "create-layer", Args: journal.Args{"vg": "HostVG", "lv": "Base-2-0+1", "origin": "Base-2-0"}},
		},
	})
	var je *journal.Error
	fmt.Println(errors.As(err, &je), je.Committed, je.Kept)
	fmt.Println(err)
	fmt.Println(strings.Join(rec.Lines(), "\n"))
	_, statErr := os.Stat(j.Path)
	fmt.Println(errors.Is(statErr, os.ErrNotExist))
	// Output:
	// true false false
	// cannot update: step create-layer lv=Base-2-0+1 origin=Base-2-0 vg=HostVG failed: lvcreate --snapshot exited 5: Insufficient free space; everything done before was undone
	// lvcreate --thin -V 4G -n Base-2-0 HostVG/pool00
	// lvcreate --snapshot -n Base-2-0+1 HostVG/Base-2-0
	// lvremove --force HostVG/Base-2-0+1
	// lvremove --force HostVG/Base-2-0
	// true
}
