package volume

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbase/imgbase/internal/command"
	"github.com/imgbase/imgbase/internal/command/commandtest"
	"github.com/imgbase/imgbase/internal/lvm"
	"github.com/imgbase/imgbase/internal/system"
)

var lvsLine = "lvs --reportformat json --units b --nosuffix -o " + strings.Join(lvm.ReportFields, ",")

// row is one LV of a fake lvs report.
type row struct {
	name, attr, tags string
	size             uint64
	major, minor     int
	data             string
}

// baseRows is a host running Base-1-0+1 (254:5), with an inactive second
// layer Base-1-0+2.
var baseRows = []row{
	{name: "pool00", attr: "twi-aotz--", tags: lvm.TagPool, size: 20 << 30, major: 254, minor: 3, data: "10.00"},
	{name: "Base-1-0", attr: "Vri---tz-k", tags: lvm.TagBase, size: 6 << 30, major: -1, minor: -1},
	{name: "Base-1-0+1", attr: "Vwi-aotz--", tags: lvm.TagLayer, size: 6 << 30, major: 254, minor: 5, data: "20.00"},
	{name: "Base-1-0+2", attr: "Vwi---tz--", tags: lvm.TagLayer, size: 6 << 30, major: -1, minor: -1},
}

func report(rows ...row) string {
	var lvs []map[string]string
	for _, r := range rows {
		dev := func(n int) string {
			if n < 0 {
				return ""
			}
			return fmt.Sprint(n)
		}
		pool := "pool00"
		if r.name == "pool00" {
			pool = ""
		}
		lvs = append(lvs, map[string]string{
			"vg_name": "HostVG", "lv_name": r.name, "lv_path": "/dev/HostVG/" + r.name, "lv_attr": r.attr,
			"lv_size": fmt.Sprint(r.size), "lv_tags": r.tags, "pool_lv": pool, "data_percent": r.data,
			"lv_kernel_major": dev(r.major), "lv_kernel_minor": dev(r.minor), "vg_tags": lvm.TagVG,
			"chunk_size": "65536",
		})
	}
	data, _ := json.Marshal(map[string]any{"report": []map[string]any{{"lv": lvs}}})
	return string(data)
}

type fixture struct {
	m      *Manager
	rec    *commandtest.Recorder
	out    *bytes.Buffer
	root   string
	mnt    string
	usage  map[string]system.Usage
	mounts []string
}

// newFixture makes a Manager on a temporary root whose lvs answers with
// rows and whose / is the device 254:5 (Base-1-0+1).
func newFixture(t *testing.T, rows ...row) *fixture {
	t.Helper()
	rec := &commandtest.Recorder{}
	rec.On("lvs ", report(rows...), nil)
	rec.On("blkid -p -o value -s TYPE", "ext4\n", nil)
	root := t.TempDir()
	f := &fixture{rec: rec, out: &bytes.Buffer{}, root: root, mnt: filepath.Join(t.TempDir(), "mnt"), usage: map[string]system.Usage{}}
	f.m = &Manager{
		System: system.System{
			Run: rec, Log: slog.New(slog.DiscardHandler), Out: f.out, Root: root, MountDir: f.mnt,
			RootDevice: func() (int, int, error) { return 254, 5, nil },
			RootFSType: func() string { return "ext4" },
			Usage: func(p string) (system.Usage, error) {
				rel := "/" + strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
				if u, ok := f.usage[rel]; ok {
					return u, nil
				}
				return system.Usage{Size: 100 << 30, Used: 1 << 30, Free: 99 << 30}, nil
			},
		}}
	f.mount("/", "254:5", "ext4", "/dev/mapper/HostVG-Base--1--0+1")
	return f
}

// mount adds a line to the fake mount table.
func (f *fixture) mount(mountpoint, dev, fstype, source string) {
	f.mounts = append(f.mounts, fmt.Sprintf("%d 1 %s / %s rw,relatime shared:1 - %s %s rw", 20+len(f.mounts), dev, mountpoint, fstype, source))
	f.write(nil, "proc/self/mountinfo", strings.Join(f.mounts, "\n")+"\n")
}

// write puts a file under the root (t may be nil inside helpers that cannot fail).
func (f *fixture) write(t *testing.T, rel, content string) string {
	p := filepath.Join(f.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil && t != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil && t != nil {
		t.Fatal(err)
	}
	return p
}

// layerFstab puts an fstab where the fake mount of a layer shows it.
func (f *fixture) layerFstab(t *testing.T, layer, content string) string {
	t.Helper()
	p := filepath.Join(f.mnt, layer, "etc/fstab")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func read(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func wantLines(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// copying runs cp and find for real, as the fake mounts are plain
// directories, and records every command; after, when set, runs once cp
// has copied.
type copying struct {
	*commandtest.Recorder
	after func(argv []string)
}

func (c *copying) Run(ctx context.Context, cmd command.Cmd) ([]byte, error) {
	out, err := c.Recorder.Run(ctx, cmd)
	if err != nil || len(cmd.Argv) == 0 || cmd.Argv[0] != "cp" && cmd.Argv[0] != "find" {
		return out, err
	}
	if b, err := exec.CommandContext(ctx, cmd.Argv[0], cmd.Argv[1:]...).CombinedOutput(); err != nil {
		return nil, &command.Error{Argv: cmd.Argv, ExitCode: 1, Stderr: string(b), Err: err}
	}
	if c.after != nil && cmd.Argv[0] == "cp" {
		c.after(cmd.Argv)
	}
	return nil, nil
}
