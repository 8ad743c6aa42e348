package system

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/imgbase/imgbase/internal/command"
	"github.com/imgbase/imgbase/internal/command/commandtest"
)

// Two lines of a real /proc/self/mountinfo: / on a layer (253:5) and a
// layer being prepared under /run/imgbase/mnt (253:9).
const mountTable = `26 1 253:5 / / rw,relatime shared:1 - ext4 /dev/mapper/HostVG-Base--1--0+1 rw,discard
412 26 253:9 / /run/imgbase/mnt/Base-2-0+1 rw,relatime shared:220 - ext4 /dev/mapper/HostVG-Base--2--0+1 rw,discard
`

func newSystem(t *testing.T, run command.Runner) (*System, *bytes.Buffer) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "proc/self"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "proc/self/mountinfo"), []byte(mountTable), 0o644); err != nil {
		t.Fatal(err)
	}
	out := &bytes.Buffer{}
	return &System{Run: run, Log: slog.New(slog.DiscardHandler), Out: out, Root: root, MountDir: "/run/imgbase/mnt"}, out
}

func TestMounts(t *testing.T) {
	s, _ := newSystem(t, &commandtest.Recorder{})
	if !s.MountedAt("/run/imgbase/mnt/Base-2-0+1") || !s.MountedAt("/") {
		t.Error("a mount point in the table is not seen")
	}
	if s.MountedAt("/run/imgbase/mnt/Base-2-0") || s.MountedAt("") {
		t.Error("a directory nothing is mounted on is seen as mounted")
	}
	m, err := s.Mounts()
	if err != nil || len(m) != 2 || m[1].Major != 253 || m[1].Minor != 9 {
		t.Errorf("Mounts = %+v, %v", m, err)
	}
	os.Remove(s.Path("proc/self/mountinfo"))
	if _, err := s.Mounts(); err == nil {
		t.Error("no mount table: no error")
	}
}

// A dry run writes no file and makes no directory; it says what it would
// write.
func TestDryWrites(t *testing.T) {
	s, out := newSystem(t, &command.Dry{Next: &commandtest.Recorder{}, Out: io.Discard})
	p := s.Path("etc/fstab")
	if err := s.WriteFile(p, []byte("x"), 0o644, "the layer's root"); err != nil {
		t.Fatal(err)
	}
	if err := s.Mkdir(s.Path("run/imgbase/mnt/L")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Errorf("a dry run wrote %s", p)
	}
	if _, err := os.Stat(s.Path("run")); !os.IsNotExist(err) {
		t.Error("a dry run made a directory")
	}
	if want := "# write " + p + ": the layer's root\n"; out.String() != want {
		t.Errorf("dry output %q, want %q", out.String(), want)
	}

	s, _ = newSystem(t, &commandtest.Recorder{})
	p = s.Path("etc/fstab")
	if err := s.Mkdir(filepath.Dir(p)); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteFile(p, []byte("x"), 0o600, ""); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(p); err != nil || string(data) != "x" {
		t.Errorf("written %q, %v", data, err)
	}
}

func TestMountOf(t *testing.T) {
	s, _ := newSystem(t, &commandtest.Recorder{})
	for dir, want := range map[string]string{
		"/boot":                                 "/",
		"/run/imgbase/mnt/Base-2-0+1/boot":      "/run/imgbase/mnt/Base-2-0+1",
		"/run/imgbase/mnt/Base-2-0+1":           "/run/imgbase/mnt/Base-2-0+1",
		"/run/imgbase/mnt/Base-2-0+10/whatever": "/",
	} {
		if got, err := s.MountOf(dir); err != nil || got != want {
			t.Errorf("MountOf(%s) = %q, %v; want %q", dir, got, err, want)
		}
	}
}
