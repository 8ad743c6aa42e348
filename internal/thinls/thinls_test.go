package thinls

import (
	"context"
	"errors"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/imgbase/imgbase/internal/command"
	"github.com/imgbase/imgbase/internal/command/commandtest"
)

// Output as thin_ls prints it, columns padded to the widest value.
const sample = `   1 1073741824  1048576 1072693248
  12  536870912 536870912          0
 305          0        0          0
`

func TestParse(t *testing.T) {
	got, err := Parse([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	want := []Usage{
		{Dev: 1, Mapped: 1 << 30, Exclusive: 1 << 20, Shared: 1<<30 - 1<<20},
		{Dev: 12, Mapped: 512 << 20, Exclusive: 512 << 20},
		{Dev: 305},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse = %+v, want %+v", got, want)
	}
	withHeader, err := Parse([]byte("DEV MAPPED_BYTES EXCLUSIVE_BYTES SHARED_BYTES\n" + sample))
	if err != nil || !reflect.DeepEqual(withHeader, want) {
		t.Errorf("with a header line: %+v, %v", withHeader, err)
	}
	if us, err := Parse(nil); err != nil || len(us) != 0 {
		t.Errorf("an empty pool: %+v, %v", us, err)
	}
}

// Real output of Debian bookworm's thin_ls 0.9.0 (thin_restore'd metadata:
// device 1 maps 10 blocks of 64 KiB, device 12 shares 8 of them), with and
// without --no-headers: columns padded, a trailing space on each line.
func TestParseReal(t *testing.T) {
	want := []Usage{{Dev: 1, Mapped: 655360, Exclusive: 131072, Shared: 524288}, {Dev: 12, Mapped: 786432, Exclusive: 262144, Shared: 524288}}
	for _, out := range []string{
		" 1 655360 131072 524288 \n12 786432 262144 524288 \n",
		"DEV MAPPED_BYTES EXCLUSIVE_BYTES SHARED_BYTES \n  1       655360          131072       524288 \n 12       786432          262144       524288 \n",
	} {
		if got, err := Parse([]byte(out)); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", out, got, err, want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{
		"1 2 3\n",                      // a column missing
		"1 2 1 1 9\n",                  // one too many
		"x 2 1 1\n",                    // DEV not a number
		"-1 2 1 1\n",                   // negative
		"16777216 0 0 0\n",             // beyond 24-bit thin ids
		"1 2 1 q\n",                    // bytes not a number
		"1 10 8 8\n",                   // exclusive + shared != mapped
		"1 1 1 0\nDEV A B C\n",         // a header anywhere but the first line
		"1 2MiB 1MiB 1MiB\n",           // human units: the wrong -o
		"1 18446744073709551616 0 0\n", // overflow
	} {
		if us, err := Parse([]byte(in)); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", in, us)
		}
	}
}

func TestDMName(t *testing.T) {
	if got := DMName("Host-VG", "pool-00", "-tpool"); got != "Host--VG-pool--00-tpool" {
		t.Errorf("DMName = %q", got)
	}
	if got := DMName("HostVG", "pool00", "_tmeta"); got != "HostVG-pool00_tmeta" {
		t.Errorf("DMName = %q", got)
	}
}

const (
	reserve = "dmsetup message HostVG-pool00-tpool 0 reserve_metadata_snap"
	list    = "thin_ls --metadata-snap --no-headers -o DEV,MAPPED_BYTES,EXCLUSIVE_BYTES,SHARED_BYTES /dev/mapper/HostVG-pool00_tmeta"
	release = "dmsetup message HostVG-pool00-tpool 0 release_metadata_snap"
)

func TestReadReservesListsReleases(t *testing.T) {
	rec := (&commandtest.Recorder{}).On("thin_ls ", sample, nil)
	us, err := Read(context.Background(), rec, "HostVG", "pool00")
	if err != nil || len(us) != 3 {
		t.Fatalf("Read = %+v, %v", us, err)
	}
	if got, want := rec.Lines(), []string{reserve, list, release}; !reflect.DeepEqual(got, want) {
		t.Errorf("ran\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if m := rec.Mutations(); len(m) != 0 {
		t.Errorf("mutating commands %v: a dry run would skip them", m)
	}
}

// The snapshot is released whatever happens after it was taken: thin_ls
// failing, missing, printing garbage, or the caller giving up.
func TestReadAlwaysReleases(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for name, c := range map[string]struct {
		ctx     context.Context
		out     string
		err     error
		wantErr string
	}{
		"fails":     {context.Background(), "", &command.Error{Argv: []string{"thin_ls"}, ExitCode: 1, Stderr: "bad superblock"}, "bad superblock"},
		"missing":   {context.Background(), "", &command.Error{Argv: []string{"thin_ls"}, ExitCode: -1, Err: exec.ErrNotFound}, "not installed"},
		"garbage":   {context.Background(), "what?\n", nil, "want 4 columns"},
		"cancelled": {cancelled, "", &command.Error{Argv: []string{"thin_ls"}, ExitCode: -1, Err: context.Canceled}, "cannot list"},
	} {
		rec := (&commandtest.Recorder{}).On("thin_ls ", c.out, c.err)
		_, err := Read(c.ctx, rec, "HostVG", "pool00")
		if err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("%s: err %v, want one saying %q", name, err, c.wantErr)
		}
		if name == "missing" && !errors.Is(err, ErrNotInstalled) {
			t.Errorf("missing: err %v is not ErrNotInstalled", err)
		}
		if l := rec.Lines(); len(l) != 3 || l[2] != release {
			t.Errorf("%s: ran %q, want the snapshot released last", name, l)
		}
	}
}

func TestReadReserveFails(t *testing.T) {
	rec := (&commandtest.Recorder{}).On("dmsetup message HostVG-pool00-tpool 0 reserve", "", &command.Error{Argv: []string{"dmsetup"}, ExitCode: 1, Stderr: "device-mapper: message ioctl failed: Device or resource busy"})
	_, err := Read(context.Background(), rec, "HostVG", "pool00")
	if err == nil || !strings.Contains(err.Error(), "release_metadata_snap") || !strings.Contains(err.Error(), "busy") {
		t.Errorf("err %v, want the cause and how to drop a leftover snapshot", err)
	}
	// A snapshot not taken here is someone else's: never released.
	if l := rec.Lines(); len(l) != 1 {
		t.Errorf("ran %q, want only the reserve", l)
	}
}

func TestReadReleaseFails(t *testing.T) {
	rec := (&commandtest.Recorder{}).On("thin_ls ", sample, nil).
		On("dmsetup message HostVG-pool00-tpool 0 release", "", &command.Error{Argv: []string{"dmsetup"}, ExitCode: 1})
	if us, err := Read(context.Background(), rec, "HostVG", "pool00"); err == nil || !strings.Contains(err.Error(), "cannot release") || us != nil {
		t.Errorf("Read = %+v, %v; want the failed release reported", us, err)
	}
}
