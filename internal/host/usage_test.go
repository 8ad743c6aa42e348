package host

import (
	"context"
	"errors"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/imgbase/imgbase/internal/command"
	"github.com/imgbase/imgbase/internal/thinls"
)

// thin_ls output for testdata/running.json's thin volumes (ids 1-8), and
// one LVM does not know about (99), which is no base's.
const runningThinLs = `1 4294967296 0 4294967296
2 4294967296 65536 4294901760
3 4294967296 1048576 4293918720
4 4294967296 0 4294967296
5 1073741824 1073741824 0
6 1610612736 524288 1610088448
7 1610612736 0 1610612736
8 104857600 104857600 0
99 65536 65536 0
`

func TestBaseUsageMapsThinIDsToBases(t *testing.T) {
	f := newFixture(t, "running", 254, 5)
	f.rec.On("thin_ls ", runningThinLs, nil)
	ctx := context.Background()
	tree, err := f.h.Layout(ctx)
	if err != nil {
		t.Fatal(err)
	}
	us, err := f.h.BaseUsage(ctx, tree)
	if err != nil {
		t.Fatal(err)
	}
	want := []BaseUsage{
		{Base: "Base-1-0", Mapped: 4 << 30, Exclusive: 65536, Shared: 4<<30 - 65536},
		{Base: "Base-2-0", Mapped: 1536 << 20, Exclusive: 524288, Shared: 1536<<20 - 524288},
		{Base: "Base-10-0", Mapped: 1 << 30, Exclusive: 1 << 30},
	}
	if !reflect.DeepEqual(us, want) {
		t.Errorf("BaseUsage =\n%+v\nwant\n%+v", us, want)
	}
	wantLines(t, f.rec.Lines(), []string{lvsLine,
		"dmsetup message HostVG-pool00-tpool 0 reserve_metadata_snap",
		"thin_ls --metadata-snap --no-headers -o DEV,MAPPED_BYTES,EXCLUSIVE_BYTES,SHARED_BYTES /dev/mapper/HostVG-pool00_tmeta",
		"dmsetup message HostVG-pool00-tpool 0 release_metadata_snap",
	})
}

func TestBaseUsageCannot(t *testing.T) {
	ctx := context.Background()
	for name, c := range map[string]struct {
		out  string
		err  error
		want string
	}{
		"no thin_ls":   {"", &command.Error{Argv: []string{"thin_ls"}, ExitCode: -1, Err: exec.ErrNotFound}, "install thin-provisioning-tools"},
		"base missing": {strings.Replace(runningThinLs, "5 1073741824 1073741824 0\n", "", 1), nil, "base Base-10-0 holds: thin_ls lists no device 5"},
	} {
		f := newFixture(t, "running", 254, 5)
		f.rec.On("thin_ls ", c.out, c.err)
		tree, err := f.h.Layout(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.h.BaseUsage(ctx, tree)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "cannot ") {
			t.Errorf("%s: err %v, want one saying %q", name, err, c.want)
		}
		if name == "no thin_ls" && !errors.Is(err, thinls.ErrNotInstalled) {
			t.Errorf("%s: %v is not thinls.ErrNotInstalled", name, err)
		}
	}
	// A report without thin_id (an lvm2 that lacks it) is said, not guessed.
	f := newFixture(t, "full", 254, 5)
	f.rec.On("thin_ls ", runningThinLs, nil)
	tree, err := f.h.Layout(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(tree.Bases) == 0 {
		t.Fatal("testdata/full.json has no bases")
	}
	if _, err := f.h.BaseUsage(ctx, tree); err == nil || !strings.Contains(err.Error(), "no thin_id") {
		t.Errorf("without thin_id: err %v", err)
	}
}
