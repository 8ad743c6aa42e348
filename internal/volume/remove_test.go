package volume

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbase/imgbase/internal/command"
	"github.com/imgbase/imgbase/internal/lvm"
	"github.com/imgbase/imgbase/internal/system"
)

var varLogRow = row{name: "var_log", attr: "Vwi-aotz--", tags: lvm.TagVolume, size: 8 << 30, major: 254, minor: 11, data: "1.00"}

const volFstab = rootFstab + "/dev/HostVG/var_log /var/log ext4 defaults,discard 0 2\n"

// removeFixture is a host with /var/log on a mounted volume: the fake
// mount directory of the volume holds its contents, the root's /var/log
// the old hidden ones.
func removeFixture(t *testing.T, rows ...row) (*fixture, *copying) {
	t.Helper()
	f := newFixture(t, append(append(append([]row{}, baseRows...), varLogRow), rows...)...)
	f.mount("/var/log", "254:11", "ext4", "/dev/mapper/HostVG-var_log")
	f.write(t, "etc/fstab", volFstab)
	f.write(t, "var/log/stale", "from before the volume\n")
	vol := filepath.Join(f.mnt, "var_log")
	for p, c := range map[string]string{"messages": "today\n", "apt/history.log": "install z\n"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(vol, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(vol, p), []byte(c), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(vol, "lost+found"), 0o700); err != nil {
		t.Fatal(err)
	}
	f.layerFstab(t, "Base-1-0+2", volFstab)
	c := &copying{Recorder: f.rec}
	f.m.Run = c
	return f, c
}

func TestRemoveCopiesBackAndEditsEveryLayer(t *testing.T) {
	f, _ := removeFixture(t)
	if err := os.MkdirAll(filepath.Join(f.root, "run/systemd/system"), 0o755); err != nil {
		t.Fatal(err)
	}
	res, err := f.m.Remove(context.Background(), "/var/log")
	if err != nil {
		t.Fatal(err)
	}
	vol := filepath.Join(f.mnt, "var_log")
	l2 := filepath.Join(f.mnt, "Base-1-0+2")
	wantLines(t, f.rec.Lines(), []string{
		lvsLine,
		"umount " + f.root + "/var/log",
		"mount /dev/HostVG/var_log " + vol,
		"cp -ax --sparse=always " + vol + "/. " + f.root + "/var/.log.imgbase-new/",
		"umount " + vol,
		"lvchange --activate y --ignoreactivationskip HostVG/Base-1-0+2",
		"blkid -p -o value -s TYPE /dev/HostVG/Base-1-0+2",
		"mount -t ext4 /dev/HostVG/Base-1-0+2 " + l2,
		"umount " + l2,
		"lvchange --activate n HostVG/Base-1-0+2",
		"lvremove --yes HostVG/var_log",
		"systemctl daemon-reload",
	})
	if got := read(t, filepath.Join(f.root, "var/log/apt/history.log")); got != "install z\n" {
		t.Errorf("contents not back: %q", got)
	}
	if _, err := os.Stat(filepath.Join(f.root, "var/log/lost+found")); !os.IsNotExist(err) {
		t.Errorf("lost+found copied into the root: %v", err)
	}
	if got := read(t, filepath.Join(f.root, "var/log.imgbase-old/stale")); got != "from before the volume\n" {
		t.Errorf("old contents not kept: %q", got)
	}
	for _, p := range []string{filepath.Join(f.root, "etc/fstab"), filepath.Join(l2, "etc/fstab")} {
		if got := read(t, p); got != rootFstab {
			t.Errorf("%s:\n%s\nwant:\n%s", p, got, rootFstab)
		}
	}
	if res.Old != "/var/log.imgbase-old" || res.LV != "var_log" {
		t.Errorf("result %+v", res)
	}
}

func TestRemoveRefusalsRunNothing(t *testing.T) {
	cases := []struct {
		name, path, msg string
		rows            []row
		setup           func(*testing.T, *fixture)
	}{
		{name: "no volume", path: "/var/tmp", msg: "there is none"},
		{name: "bad path", path: "/etc", msg: "belongs to the OS image"},
		{name: "volume below", path: "/var", msg: "volume /var/log lies below it", rows: []row{{name: "var", attr: "Vwi-aotz--", tags: lvm.TagVolume, size: 1 << 30, major: 254, minor: 10}}},
		{name: "mount below", path: "/var/log", msg: "/var/log/journal is mounted below it", setup: func(t *testing.T, f *fixture) {
			f.mount("/var/log/journal", "0:40", "tmpfs", "tmpfs")
		}},
		{name: "mounted elsewhere", path: "/var/log", msg: "it is mounted on /mnt", setup: func(t *testing.T, f *fixture) {
			f.mounts = f.mounts[:1]
			f.mount("/mnt", "254:11", "ext4", "/dev/mapper/HostVG-var_log")
		}},
		{name: "other mount", path: "/var/log", msg: "tmpfs from tmpfs is mounted there", setup: func(t *testing.T, f *fixture) {
			f.mounts = f.mounts[:1]
			f.mount("/var/log", "0:41", "tmpfs", "tmpfs")
		}},
		{name: "in the way", path: "/var/log", msg: "/var/log.imgbase-old is in the way", setup: func(t *testing.T, f *fixture) {
			f.write(t, "var/log.imgbase-old/x", "")
		}},
		{name: "no room", path: "/var/log", msg: "free 1024 bytes there first", setup: func(t *testing.T, f *fixture) {
			f.usage["/var/log"] = system.Usage{Size: 8 << 30, Used: 5 << 30}
			f.usage["/var"] = system.Usage{Size: 6 << 30, Used: 1 << 30, Free: 5<<30 - 1024}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := removeFixture(t, tc.rows...)
			if tc.setup != nil {
				tc.setup(t, f)
			}
			_, err := f.m.Remove(context.Background(), tc.path)
			var r *ErrRefused
			if !errors.As(err, &r) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %v; want a refusal with %q", err, tc.msg)
			}
			if m := f.rec.Mutations(); len(m) != 0 {
				t.Errorf("ran %v", m)
			}
			if got := read(t, filepath.Join(f.root, "etc/fstab")); got != volFstab {
				t.Errorf("fstab changed:\n%s", got)
			}
		})
	}
}

func TestRemoveInUseChangesNothing(t *testing.T) {
	f, _ := removeFixture(t)
	f.rec.On("umount "+f.root+"/var/log", "", &command.Error{Argv: []string{"umount"}, ExitCode: 32, Stderr: "umount: /var/log: target is busy."})
	_, err := f.m.Remove(context.Background(), "/var/log")
	if err == nil || !strings.Contains(err.Error(), "fuser -vm /var/log") {
		t.Fatalf("error %v", err)
	}
	wantLines(t, f.rec.Mutations(), []string{"umount " + f.root + "/var/log"})
	if _, err := os.Stat(filepath.Join(f.root, "var/.log.imgbase-new")); !os.IsNotExist(err) {
		t.Errorf("copy directory made: %v", err)
	}
}

func TestRemoveUndoesWhenTheCopyDiffers(t *testing.T) {
	f, c := removeFixture(t)
	newDir := filepath.Join(f.root, "var/.log.imgbase-new")
	c.after = func([]string) { os.Remove(filepath.Join(newDir, "messages")) }
	_, err := f.m.Remove(context.Background(), "/var/log")
	var mm *MismatchError
	if !errors.As(err, &mm) || mm.Path != "messages" {
		t.Fatalf("error %v; want a mismatch of messages", err)
	}
	vol := filepath.Join(f.mnt, "var_log")
	wantLines(t, f.rec.Mutations(), []string{
		"umount " + f.root + "/var/log",
		"mount /dev/HostVG/var_log " + vol,
		"cp -ax --sparse=always " + vol + "/. " + newDir + "/",
		"umount " + vol,
		"mount -o discard /dev/HostVG/var_log " + f.root + "/var/log",
	})
	if _, err := os.Stat(newDir); !os.IsNotExist(err) {
		t.Errorf("unfinished copy left behind: %v", err)
	}
	if got := read(t, filepath.Join(f.root, "etc/fstab")); got != volFstab {
		t.Errorf("fstab changed:\n%s", got)
	}
}

func TestRemoveUndoesEverythingWhenTheSwapFails(t *testing.T) {
	f, _ := removeFixture(t)
	// Once the last layer's fstab is edited, something takes the name the
	// old directory is to be moved to: the swap fails after every fstab
	// has been edited.
	f.m.Run = &failAfter{Runner: f.m.Run, argv0: "lvchange", n: 2, then: func() {
		os.MkdirAll(filepath.Join(f.root, "var/log.imgbase-old/x"), 0o755)
	}}
	_, err := f.m.Remove(context.Background(), "/var/log")
	if err == nil || !strings.Contains(err.Error(), "cannot rename") {
		t.Fatalf("error %v", err)
	}
	if got := read(t, filepath.Join(f.root, "var/log/stale")); got != "from before the volume\n" {
		t.Errorf("root directory changed: %q", got)
	}
	if _, err := os.Stat(filepath.Join(f.root, "var/.log.imgbase-new")); !os.IsNotExist(err) {
		t.Errorf("unfinished copy left behind: %v", err)
	}
	if got := read(t, filepath.Join(f.root, "etc/fstab")); got != volFstab {
		t.Errorf("running fstab not restored:\n%s", got)
	}
	if got := read(t, filepath.Join(f.mnt, "Base-1-0+2/etc/fstab")); got != volFstab {
		t.Errorf("layer fstab not restored:\n%s", got)
	}
	l2 := filepath.Join(f.mnt, "Base-1-0+2")
	muts := f.rec.Mutations()
	wantLines(t, muts[len(muts)-5:], []string{
		"lvchange --activate y --ignoreactivationskip HostVG/Base-1-0+2",
		"mount -t ext4 /dev/HostVG/Base-1-0+2 " + l2,
		"umount " + l2,
		"lvchange --activate n HostVG/Base-1-0+2",
		"mount -o discard /dev/HostVG/var_log " + f.root + "/var/log",
	})
	if f.rec.Count("lvremove") != 0 {
		t.Error("lvremove ran")
	}
}

// failAfter calls then once the n-th command running argv0 has run.
type failAfter struct {
	command.Runner
	argv0 string
	n     int
	then  func()
}

func (f *failAfter) Run(ctx context.Context, c command.Cmd) ([]byte, error) {
	out, err := f.Runner.Run(ctx, c)
	if len(c.Argv) > 0 && c.Argv[0] == f.argv0 {
		if f.n--; f.n == 0 {
			f.then()
		}
	}
	return out, err
}

func TestRemoveDryRunChangesNothing(t *testing.T) {
	f, _ := removeFixture(t)
	f.m.Run = &command.Dry{Next: f.rec, Out: f.out}
	if _, err := f.m.Remove(context.Background(), "/var/log"); err != nil {
		t.Fatal(err)
	}
	if m := f.rec.Mutations(); len(m) != 0 {
		t.Errorf("ran %v", m)
	}
	if got := read(t, filepath.Join(f.root, "etc/fstab")); got != volFstab {
		t.Errorf("fstab changed")
	}
	if got := read(t, filepath.Join(f.root, "var/log/stale")); got == "" {
		t.Errorf("root directory changed")
	}
	for _, want := range []string{"umount " + f.root + "/var/log", "# rename " + f.root + "/var/log " + f.root + "/var/log.imgbase-old", "lvremove --yes HostVG/var_log"} {
		if !strings.Contains(f.out.String(), want) {
			t.Errorf("dry output lacks %q:\n%s", want, f.out)
		}
	}
}

func TestList(t *testing.T) {
	f := newFixture(t, append(append([]row{}, baseRows...), varLogRow,
		row{name: "home", attr: "Vwi---tz--", tags: lvm.TagVolume, size: 1 << 30, major: -1, minor: -1})...)
	f.mount("/var/log", "254:11", "ext4", "/dev/mapper/HostVG-var_log")
	f.usage["/var/log"] = system.Usage{Size: 8 << 30, Used: 100 << 20, Free: 7 << 30}
	vols, err := f.m.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, f.rec.Lines(), []string{lvsLine})
	if len(vols) != 2 {
		t.Fatalf("%+v", vols)
	}
	home, log := vols[0], vols[1]
	if home.Path != "/home" || home.Mounted || home.LV != "home" || home.Size != 1<<30 || home.FSUsed != 0 {
		t.Errorf("home %+v", home)
	}
	if log.Path != "/var/log" || !log.Mounted || log.MountPoint != "/var/log" || log.Dev != "/dev/HostVG/var_log" ||
		log.PoolUsed != (8<<30)/100 || log.FSUsed != 100<<20 || log.FSSize != 8<<30 {
		t.Errorf("var/log %+v", log)
	}
}
