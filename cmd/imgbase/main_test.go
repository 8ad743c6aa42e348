package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/imgbase/imgbase/internal/command"
	"github.com/imgbase/imgbase/internal/command/commandtest"
	"github.com/imgbase/imgbase/internal/lock"
)

type cli struct {
	env *environment
	rec *commandtest.Recorder
}

// newCLI fakes a host whose lvs prints ../../internal/host/testdata/<report>.json
// and whose / is device 254:<minor>.
func newCLI(t *testing.T, report string, minor int) *cli {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("../../internal/host/testdata", report+".json"))
	if err != nil {
		t.Fatal(err)
	}
	rec := &commandtest.Recorder{}
	rec.On("lvs ", string(data), nil)
	rec.On("blkid -p -o value -s TYPE /dev/HostVG/Base-10-0", "", &command.Error{ExitCode: 2})
	rec.On("blkid -p -o value -s TYPE", "ext4\n", nil)
	root := t.TempDir()
	mnt := filepath.Join(root, "mnt")
	// Whatever layer gets "mounted", its fstab is there to edit.
	for _, l := range []string{"Base-1-0+1", "Base-1-0+2", "Base-1-0+3", "Base-2-0+1", "Base-2-0+2"} {
		os.MkdirAll(filepath.Join(mnt, l, "etc"), 0o755)
		os.WriteFile(filepath.Join(mnt, l, "etc/fstab"), []byte("/dev/mapper/HostVG-root / ext4 defaults 0 1\n"), 0o644)
	}
	// A Debian /boot: kernel, initramfs and a hand-written grub.cfg.
	for name, content := range map[string]string{
		"boot/vmlinuz-6.1.0-13-amd64":    "kernel",
		"boot/initrd.img-6.1.0-13-amd64": "initrd",
		"boot/grub/grub.cfg":             "serial --unit=0 --speed=115200\nload_env\nmenuentry 'Debian' --id debian {\n linux /vmlinuz-6.1.0-13-amd64 root=/dev/mapper/HostVG-root ro\n}\n",
		"etc/fstab":                      "/dev/HostVG/Base-1-0+1 / ext4 defaults,discard 0 1\n/dev/HostVG/var /var ext4 defaults,discard 0 2\n",
		"proc/self/mountinfo": "25 1 254:5 / / rw,relatime shared:1 - ext4 /dev/mapper/HostVG-Base--1--0+1 rw\n" +
			"30 25 8:1 / /boot rw,relatime shared:2 - ext4 /dev/sda1 rw\n",
		"proc/cmdline": "BOOT_IMAGE=/vmlinuz-6.1.0-13-amd64 root=/dev/mapper/HostVG-root ro console=ttyS0,115200n8\n",
	} {
		os.MkdirAll(filepath.Dir(filepath.Join(root, name)), 0o755)
		os.WriteFile(filepath.Join(root, name), []byte(content), 0o644)
	}
	return &cli{rec: rec, env: &environment{
		Runner: rec, Root: root, MountDir: mnt,
		RootDevice: func() (int, int, error) { return 254, minor, nil },
		RootFSType: func() string { return "ext4" },
	}}
}

func (c *cli) run(t *testing.T, line string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	args := append([]string{"--config", filepath.Join(c.env.Root, "imgbased.conf"),
		"--lock-file", filepath.Join(c.env.Root, "lock")}, strings.Fields(line)...)
	code = run(context.Background(), args, &out, &errb, c.env)
	return code, out.String(), errb.String()
}

// The seeds' walk-through, verbatim, on a host before and after init.
func TestSeedCommands(t *testing.T) {
	c := newCLI(t, "preinit", 4)
	if code, _, stderr := c.run(t, "layout --init Base-1-0 --from /"); code != 0 {
		t.Fatalf("layout --init: %d %s", code, stderr)
	}
	m := c.rec.Mutations()
	if len(m) < 5 || m[0] != "vgchange --addtag imgbased:vg HostVG" ||
		m[3] != "lvcreate --snapshot --name Base-1-0 --addtag imgbased:base --setactivationskip y --permission r --activate n HostVG/root" ||
		m[4] != "lvcreate --snapshot --name Base-1-0+1 --addtag imgbased:layer --setactivationskip n --activate y HostVG/Base-1-0" {
		t.Errorf("init ran:\n%s", strings.Join(m, "\n"))
	}

	c = newCLI(t, "init", 5)
	code, out, _ := c.run(t, "layout")
	if code != 0 || out != "Base-1-0\n +- Base-1-0+1 (current)\n" {
		t.Errorf("layout: %d %q", code, out)
	}
	if n := c.rec.Count("lvs"); n != 1 || len(c.rec.Calls) != 1 {
		t.Errorf("layout ran %v, want exactly one lvs", c.rec.Lines())
	}
	c.rec.Calls = nil
	if code, _, stderr := c.run(t, "base --add Base-2-0 --size 1G"); code != 0 {
		t.Fatalf("base --add: %d %s", code, stderr)
	}
	if m := c.rec.Mutations(); len(m) != 2 || m[0] != "lvcreate --thin --virtualsize 1073741824b --name Base-2-0 --addtag imgbased:base HostVG/pool00" {
		t.Errorf("base --add ran %v", m)
	}
	if code, out, _ := c.run(t, "base --latest"); code != 0 || out != "Base-1-0\n" {
		// the fixture does not change: the latest base is still Base-1-0
		t.Errorf("base --latest: %d %q", code, out)
	}
	c.rec.Calls = nil
	if code, out, stderr := c.run(t, "layer --add Base-1-0"); code != 0 || !strings.Contains(out, "Base-1-0+2") {
		t.Errorf("layer --add Base-1-0: %d %q %s", code, out, stderr)
	}
	if n := c.rec.Count("lvs", "lvcreate", "lvchange", "vgchange", "lvremove"); n > 4 {
		t.Errorf("layer --add ran %d LVM processes", n)
	}
	c.rec.Calls = nil
	code, _, stderr := c.run(t, "--debug layer --add")
	if code != 0 || !strings.Contains(stderr, "cmd=\"lvcreate --snapshot --name Base-1-0+2") && !strings.Contains(stderr, "adding layer") {
		t.Errorf("--debug layer --add: %d\n%s", code, stderr)
	}
}

func TestDryPrintsAndChangesNothing(t *testing.T) {
	for _, line := range []string{
		"--debug --dry layer --add",
		"--dry layer --add Base-1-0",
		"--dry base --add Base-3-0 --size 1G",
		"--dry layer --remove Base-1-0+2",
		"--dry base --remove Base-2-0",
	} {
		c := newCLI(t, "running", 5)
		code, out, stderr := c.run(t, line)
		if code != 0 {
			t.Errorf("%s: %d %s", line, code, stderr)
			continue
		}
		if m := c.rec.Mutations(); len(m) != 0 {
			t.Errorf("%s ran %v", line, m)
		}
		if !strings.Contains(out, "lvcreate") && !strings.Contains(out, "lvremove") {
			t.Errorf("%s printed %q", line, out)
		}
	}
}

func TestListings(t *testing.T) {
	c := newCLI(t, "running", 5)
	for line, want := range map[string]string{
		"layout --bases":                 "Base-1-0\nBase-2-0\nBase-10-0\n",
		"layout --layers":                "Base-1-0+1\nBase-1-0+2\nBase-2-0+1\n",
		"layout --free-space --units g":  "6G\n",
		"layout --free-space":            "6442450944\n",
		"base --latest":                  "Base-10-0\n",
		"base --of-layer Base-2-0+1":     "Base-2-0\n",
		"layer --latest":                 "Base-2-0+1\n",
		"layer --current":                "Base-1-0+1\n",
		"layer --volume-path Base-1-0+2": "/dev/HostVG/Base-1-0+2\n",
		"--json layout --bases":          "[\n  \"Base-1-0\",\n  \"Base-2-0\",\n  \"Base-10-0\"\n]\n",
	} {
		if code, out, stderr := c.run(t, line); code != 0 || out != want {
			t.Errorf("%s: %d %q %s, want %q", line, code, out, stderr, want)
		}
	}
	code, out, _ := c.run(t, "--json layout")
	var tree struct {
		Current string `json:"current"`
		Bases   []struct {
			Name string `json:"name"`
		} `json:"bases"`
	}
	if err := json.Unmarshal([]byte(out), &tree); code != 0 || err != nil || tree.Current != "Base-1-0+1" || len(tree.Bases) != 3 {
		t.Errorf("--json layout: %d %v %s", code, err, out)
	}
	if m := c.rec.Mutations(); len(m) != 0 {
		t.Errorf("listings ran %v", m)
	}
}

// thin_ls's answer for testdata/running.json's thin ids (bases are 2, 5, 6).
const thinLs = `1 4294967296 0 4294967296
2 4294967296 65536 4294901760
3 4294967296 1048576 4293918720
4 4294967296 0 4294967296
5 1073741824 1073741824 0
6 1610612736 524288 1610088448
7 1610612736 0 1610612736
8 104857600 104857600 0
`

// --by-base keeps --free-space's first line (scripts read it with head -1)
// and adds a table; it costs three processes (reserve, thin_ls, release).
func TestFreeSpaceByBase(t *testing.T) {
	c := newCLI(t, "running", 5)
	c.rec.On("thin_ls ", thinLs, nil)
	code, out, stderr := c.run(t, "layout --free-space --by-base --units m")
	want := "6144M\n" +
		"BASE       MAPPED  EXCLUSIVE  SHARED\n" +
		"Base-1-0    4096M         0M   4095M\n" +
		"Base-2-0    1536M         0M   1535M\n" +
		"Base-10-0   1024M      1024M      0M\n"
	if code != 0 || out != want {
		t.Errorf("layout --free-space --by-base --units m: %d %s\n%s\nwant\n%s", code, stderr, out, want)
	}
	if n := len(c.rec.Lines()); n != 4 {
		t.Errorf("ran %d processes, want 4: %q", n, c.rec.Lines())
	}
	if m := c.rec.Mutations(); len(m) != 0 {
		t.Errorf("ran mutating commands %v", m)
	}

	code, out, _ = c.run(t, "--json layout --free-space --by-base")
	var j struct {
		Free  uint64 `json:"free"`
		Bases []struct {
			Base                      string
			Mapped, Exclusive, Shared uint64
		} `json:"bases"`
	}
	if err := json.Unmarshal([]byte(out), &j); code != 0 || err != nil || j.Free != 6<<30 || len(j.Bases) != 3 ||
		j.Bases[2].Base != "Base-10-0" || j.Bases[2].Exclusive != 1<<30 || j.Bases[0].Shared != 4294901760 {
		t.Errorf("--json layout --free-space --by-base: %d %v %s", code, err, out)
	}
	// Without --by-base, --json stays as it was: no thin_ls.
	c.rec.Calls = nil
	if code, out, _ := c.run(t, "--json layout --free-space"); code != 0 || strings.Contains(out, "bases") || c.rec.Count("thin_ls", "dmsetup") != 0 {
		t.Errorf("--json layout --free-space: %d %s %q", code, out, c.rec.Lines())
	}
}

func TestFreeSpaceByBaseWithoutThinLs(t *testing.T) {
	c := newCLI(t, "running", 5)
	c.rec.On("thin_ls ", "", &command.Error{Argv: []string{"thin_ls"}, ExitCode: -1, Err: exec.ErrNotFound})
	code, out, stderr := c.run(t, "layout --free-space --by-base")
	if code != 1 || out != "" || !strings.Contains(stderr, "cannot tell what each base holds exclusively: thin_ls is not installed (install thin-provisioning-tools)") {
		t.Errorf("without thin_ls: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if l := c.rec.Lines(); l[len(l)-1] != "dmsetup message HostVG-pool00-tpool 0 release_metadata_snap" {
		t.Errorf("the metadata snapshot is not released last: %q", l)
	}
}

func TestExitCodesAndRefusals(t *testing.T) {
	for _, tc := range []struct {
		line string
		code int
		msg  string
	}{
		{"layout --bogus", 2, "unknown flag"},
		{"frobnicate", 2, "unknown command"},
		{"base", 2, "say one of"},
		{"base --add", 2, "needs an NVR"},
		{"base --add Base-3-0", 2, "needs --size"},
		{"base --add Base-3-0 --size 1Q", 2, "cannot read size"},
		{"layer --add --remove Base-1-0+2", 2, "say one of"},
		{"layout --units q --free-space", 2, "unknown unit"},
		{"layout --by-base", 2, "goes with --free-space"},
		{"layout --bases --by-base", 2, "goes with --free-space"},
		{"layer --remove Base-1-0+1", 1, "running layer"},
		{"base --remove Base-1-0", 1, "running layer"},
		{"layer --remove Nope-1-0+1", 1, "no such layer"},
		{"layer --add Nope-1-0", 1, "no such base or layer"},
		{"base --add Base-1-0 --size 1G", 1, "exists"},
		{"base --add Bad!Name-1-0 --size 1G", 1, "cannot add base"},
		{"base --add --size 1G /nonexistent/image.img", 1, "no such file"},
		{"layout --init", 1, "already managed"},
		{"base --of-layer Nope", 1, "cannot find layer"},
	} {
		c := newCLI(t, "running", 5)
		code, _, stderr := c.run(t, tc.line)
		if code != tc.code || !strings.Contains(stderr, tc.msg) || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "imgbase: ") {
			t.Errorf("%s: exit %d, stderr %q; want %d and one line with %q", tc.line, code, stderr, tc.code, tc.msg)
		}
		if m := c.rec.Mutations(); len(m) != 0 {
			t.Errorf("%s ran %v", tc.line, m)
		}
	}
}

func TestVersionAndHelp(t *testing.T) {
	c := newCLI(t, "running", 5)
	if code, out, stderr := c.run(t, "--version"); code != 0 || !strings.HasPrefix(out, "imgbase dev (commit ") {
		t.Log(stderr)
		t.Errorf("--version: %d %q", code, out)
	}
	if code, out, _ := c.run(t, "--help"); code != 0 || !strings.Contains(out, "layer") || !strings.Contains(out, "layout") {
		t.Errorf("--help: %d %q", code, out)
	}
	if len(c.rec.Calls) != 0 {
		t.Errorf("--help/--version ran %v", c.rec.Lines())
	}
}

func TestBadConfigRefusesBeforeAnything(t *testing.T) {
	c := newCLI(t, "running", 5)
	os.WriteFile(filepath.Join(c.env.Root, "imgbased.conf"), []byte("[update]\nimages_to_keep = many\n"), 0o644)
	code, _, stderr := c.run(t, "layer --add")
	if code != 1 || !strings.Contains(stderr, "images_to_keep") {
		t.Errorf("exit %d %q", code, stderr)
	}
	if len(c.rec.Calls) != 0 {
		t.Errorf("ran %v", c.rec.Lines())
	}
}

func TestSecondRunWaitsThenNamesHolder(t *testing.T) {
	c := newCLI(t, "running", 5)
	held, err := lock.Acquire(context.Background(), filepath.Join(c.env.Root, "lock"), "pid 1: imgbase layer --add", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	code, _, stderr := c.run(t, "--lock-timeout 300ms layer --add")
	if code != 1 || !strings.Contains(stderr, "imgbase layer --add") {
		t.Errorf("exit %d %q", code, stderr)
	}
	if m := c.rec.Mutations(); len(m) != 0 {
		t.Errorf("ran %v while locked out", m)
	}
	// Read-only commands never take the lock.
	if code, _, stderr := c.run(t, "layout"); code != 0 {
		t.Errorf("layout while locked: %d %s", code, stderr)
	}
}

func TestBootWiring(t *testing.T) {
	c := newCLI(t, "init", 5)
	// layer --add writes a real entry into the fake /boot, in try mode.
	if code, _, stderr := c.run(t, "layer --add Base-1-0"); code != 0 {
		t.Fatalf("layer --add: %s", stderr)
	}
	entry := filepath.Join(c.env.Root, "boot/loader/entries/Base-1-0_2.conf")
	data, err := os.ReadFile(entry)
	if err != nil || !strings.Contains(string(data), "root=/dev/HostVG/Base-1-0+2") || !strings.Contains(string(data), "img.bootid=Base-1-0+2") || !strings.Contains(string(data), "console=ttyS0,115200n8") {
		t.Errorf("entry %s: %v\n%s", entry, err, data)
	}
	if _, err := os.Stat(filepath.Join(c.env.Root, "boot/Base-1-0+2/vmlinuz-6.1.0-13-amd64")); err != nil {
		t.Errorf("kernel not copied: %v", err)
	}
	// The layer gets the unit that marks its trial boot good, enabled.
	wants := filepath.Join(c.env.MountDir, "Base-1-0+2/etc/systemd/system/multi-user.target.wants/imgbase-boot-success.service")
	if target, err := os.Readlink(wants); err != nil || target != "../imgbase-boot-success.service" {
		t.Errorf("success unit not enabled: %q %v", target, err)
	}
	code, out, _ := c.run(t, "boot --status")
	if code != 0 || !strings.Contains(out, "Base-1-0+2") {
		t.Errorf("boot --status: %d %q", code, out)
	}
	// The fixture's layout knows Base-1-0+1 only: it has no entry, which check reports.
	if code, out, stderr := c.run(t, "check"); code != 1 || !strings.Contains(out, "Base-1-0+1") || !strings.Contains(stderr, "imgbase recover") {
		t.Errorf("check: %d %q %q", code, out, stderr)
	}
	if code, _, stderr := c.run(t, "boot --set-default Base-1-0+1"); code != 1 || !strings.Contains(stderr, "no boot entry") {
		t.Errorf("set-default without entry: %d %q", code, stderr)
	}
	// recover recreates the missing entry (and drops Base-1-0+2's, whose
	// layer the fixture does not have); check is then clean.
	if code, out, stderr := c.run(t, "recover"); code != 0 {
		t.Errorf("recover: %d %q %q", code, out, stderr)
	}
	if code, out, stderr := c.run(t, "check"); code != 0 {
		t.Errorf("check after recover: %d %q %q", code, out, stderr)
	}
	if code, _, stderr := c.run(t, "boot --set-default Base-1-0+1"); code != 0 {
		t.Errorf("set-default after recover: %d %q", code, stderr)
	}
	if code, out, _ := c.run(t, "boot --get-default"); code != 0 || out != "Base-1-0+1\n" {
		t.Errorf("get-default: %d %q", code, out)
	}
	if code, _, stderr := c.run(t, "boot --next Nope-1-0+1"); code != 1 || !strings.Contains(stderr, "no such layer") {
		t.Errorf("next of a missing layer: %d %q", code, stderr)
	}
	if code, _, stderr := c.run(t, "rollback --to Nope-1-0+1"); code != 1 || !strings.Contains(stderr, "no such layer") {
		t.Errorf("rollback to a missing layer: %d %q", code, stderr)
	}
	// The fixture's host never booted a layer: --to is done, with a warning.
	if code, out, stderr := c.run(t, "rollback --to Base-1-0+1"); code != 0 || out != "Base-1-0+1 is now the default: named with --to\n" ||
		!strings.Contains(stderr, "warning: Base-1-0+1 has never booted") {
		t.Errorf("rollback --to a layer that never booted: %d %q %q", code, out, stderr)
	}
	if code, _, _ := c.run(t, "boot --list --status"); code != 2 {
		t.Errorf("two boot actions: exit %d", code)
	}
}

func TestVolumeCommand(t *testing.T) {
	c := newCLI(t, "running", 5)
	if code, out, stderr := c.run(t, "--json volume --list"); code != 0 || !strings.Contains(out, `"path": "/var"`) || !strings.Contains(out, `"lv": "var"`) {
		t.Errorf("volume --list: %d %q %q", code, out, stderr)
	}
	for line, want := range map[string]int{
		"volume --create /var 1G": 1, // exists
		"volume --create /var":    2,
		"volume --list /var":      2,
		"volume":                  2,
	} {
		if code, _, stderr := c.run(t, line); code != want {
			t.Errorf("%s: exit %d %q, want %d", line, code, stderr, want)
		}
	}
	if m := c.rec.Mutations(); len(m) != 0 {
		t.Errorf("ran %v", m)
	}
}

// A host whose /boot has no loader imgbase knows still gets its layout.
func TestInitWithoutKnownLoader(t *testing.T) {
	c := newCLI(t, "preinit", 4)
	os.RemoveAll(filepath.Join(c.env.Root, "boot/grub"))
	if code, _, stderr := c.run(t, "layout --init Base-1-0"); code != 0 {
		t.Fatalf("init: %d %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(c.env.Root, "boot/loader/entries/Base-1-0_1.conf")); err != nil {
		t.Errorf("no entry: %v", err)
	}
}

// A layer whose image has no imgbase gets this one, so that its units can
// mark its trial boot good; one that has it keeps its own.
func TestLayerGetsImgbaseWhenItsImageLacksIt(t *testing.T) {
	c := newCLI(t, "init", 5)
	if code, _, stderr := c.run(t, "layer --add Base-1-0"); code != 0 {
		t.Fatalf("layer --add: %s", stderr)
	}
	self, _ := os.Executable()
	want, _ := os.ReadFile(self)
	got, err := os.ReadFile(filepath.Join(c.env.MountDir, "Base-1-0+2/usr/local/sbin/imgbase"))
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("imgbase not copied into the layer: %v", err)
	}
	c = newCLI(t, "init", 5)
	own := filepath.Join(c.env.MountDir, "Base-1-0+2/usr/sbin/imgbase")
	os.MkdirAll(filepath.Dir(own), 0o755)
	os.WriteFile(own, []byte("the image's own"), 0o755)
	if code, _, stderr := c.run(t, "layer --add Base-1-0"); code != 0 {
		t.Fatalf("layer --add: %s", stderr)
	}
	if _, err := os.Stat(filepath.Join(c.env.MountDir, "Base-1-0+2/usr/local/sbin/imgbase")); !os.IsNotExist(err) {
		t.Errorf("copied over an image that ships imgbase: %v", err)
	}
}

// A command that changes the system leaves its trace in
// /var/log/imgbased.log, failures included; listings and dry runs do not.
func TestChangesAreLogged(t *testing.T) {
	c := newCLI(t, "running", 5)
	logPath := filepath.Join(c.env.Root, "var/log/imgbased.log")
	for _, line := range []string{"layout", "layer --latest", "--dry layer --add"} {
		if code, _, stderr := c.run(t, line); code != 0 {
			t.Fatalf("%s: %d %s", line, code, stderr)
		}
	}
	if _, err := os.Stat(logPath); err == nil {
		t.Fatalf("listings or a dry run wrote %s", logPath)
	}
	if code, _, stderr := c.run(t, "layer --add"); code != 0 {
		t.Fatalf("layer --add: %d %s", code, stderr)
	}
	if code, _, _ := c.run(t, "layer --remove Nope-1-0+1"); code != 1 {
		t.Fatalf("removing a missing layer: exit %d", code)
	}
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	log := string(data)
	for _, want := range []string{
		`msg="imgbase started" args="--config `, `layer --add" pid=`,
		`msg="adding layer" layer=Base-10-0+1`,
		`msg="imgbase finished"`,
		`layer --remove Nope-1-0+1" pid=`,
		`level=ERROR msg="imgbase failed" err=`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q:\n%s", want, log)
		}
	}
	if n := strings.Count(log, "imgbase started"); n != 2 {
		t.Errorf("%d runs logged, want 2:\n%s", n, log)
	}
	// Each run ends with its peak memory, failed ones too.
	if n := len(regexp.MustCompile(`msg="imgbase (finished|failed)".* maxrss_kib=[1-9][0-9]*\n`).FindAllString(log, -1)); n != 2 {
		t.Errorf("%d runs end with their peak memory (maxrss_kib), want 2:\n%s", n, log)
	}
}

// A log that cannot be written is warned about and does not stop the work.
func TestUnwritableLogDoesNotStopTheWork(t *testing.T) {
	c := newCLI(t, "running", 5)
	os.MkdirAll(filepath.Join(c.env.Root, "var"), 0o755)
	os.WriteFile(filepath.Join(c.env.Root, "var/log"), []byte("not a directory"), 0o644)
	code, _, stderr := c.run(t, "layer --add")
	if code != 0 || !strings.HasPrefix(stderr, "imgbase: warning: cannot write the log file: "+filepath.Join(c.env.Root, "var/log/imgbased.log")+" (") {
		t.Fatalf("layer --add with an unwritable log: %d %q", code, stderr)
	}
}

// With /boot not mounted, every verb that reads or writes boot entries
// says so and stops before changing anything; the layer's own /boot is
// neither read nor written.
func TestBootNotMountedStops(t *testing.T) {
	c := newCLI(t, "running", 5)
	os.WriteFile(filepath.Join(c.env.Root, "proc/self/mountinfo"), []byte("25 1 254:5 / / rw,relatime shared:1 - ext4 /dev/mapper/HostVG-Base--1--0+1 rw\n"), 0o644)
	before := snapshotTree(t, filepath.Join(c.env.Root, "boot"))
	for _, line := range []string{"boot --list", "boot --get-default", "boot --status", "boot --set-default Base-1-0+1",
		"boot --mark-good", "rollback", "check", "recover", "layer --add", "layer --remove Base-1-0+2", "base --remove Base-2-0"} {
		code, _, stderr := c.run(t, line)
		if code != 1 || !strings.Contains(stderr, "/boot is not mounted") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%s: exit %d, stderr %q; want 1 and one line saying /boot is not mounted", line, code, stderr)
		}
	}
	if m := c.rec.Mutations(); len(m) != 0 {
		t.Errorf("ran %v with /boot not mounted", m)
	}
	if after := snapshotTree(t, filepath.Join(c.env.Root, "boot")); after != before {
		t.Errorf("/boot changed:\n%s\nwas\n%s", after, before)
	}
}

// snapshotTree lists the files under dir with their sizes.
func snapshotTree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil {
			fmt.Fprintf(&b, "%s %d\n", p, info.Size())
		}
		return nil
	})
	return b.String()
}
