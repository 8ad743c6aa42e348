package volume

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imgbase/imgbase/internal/command"
	"github.com/imgbase/imgbase/internal/layout"
	"github.com/imgbase/imgbase/internal/lvm"
)

const rootFstab = "# /etc/fstab\n/dev/HostVG/Base-1-0+1 / ext4 defaults,discard 0 1\nUUID=b00t /boot ext4 defaults 0 2\n"

// createFixture has /var/log in the running root with a few files, and
// layer Base-1-0+2's fstab.
func createFixture(t *testing.T, rows ...row) (*fixture, *copying) {
	t.Helper()
	all := append([]row{}, baseRows...)
	for _, r := range rows {
		replaced := false
		for i := range all {
			if all[i].name == r.name {
				all[i], replaced = r, true
			}
		}
		if !replaced {
			all = append(all, r)
		}
	}
	f := newFixture(t, all...)
	f.write(t, "etc/fstab", rootFstab)
	f.write(t, "var/log/messages", "boot ok\n")
	f.write(t, "var/log/apt/history.log", "install x\n")
	if err := os.Symlink("messages", filepath.Join(f.root, "var/log/syslog")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(f.root, "var/log/messages"), filepath.Join(f.root, "var/log/messages.hard")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(f.root, "var/log"), 0o751); err != nil {
		t.Fatal(err)
	}
	f.layerFstab(t, "Base-1-0+2", rootFstab)
	// Files changed within clockLag of the copy are not verified: make
	// these older so that the tests verify them.
	time.Sleep(2 * clockLag)
	c := &copying{Recorder: f.rec}
	f.m.Run = c
	return f, c
}

func TestCreateMovesContentsAndEditsEveryLayer(t *testing.T) {
	f, _ := createFixture(t)
	if err := os.MkdirAll(filepath.Join(f.root, "run/systemd/system"), 0o755); err != nil {
		t.Fatal(err)
	}
	res, err := f.m.Create(context.Background(), "/var/log", "8G")
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(f.mnt, "var_log")
	l2 := filepath.Join(f.mnt, "Base-1-0+2")
	wantLines(t, f.rec.Lines(), []string{
		lvsLine,
		"lvcreate --thin --virtualsize 8589934592b --name var_log --addtag imgbased:volume HostVG/pool00",
		"mkfs.ext4 -q -E nodiscard /dev/HostVG/var_log",
		"mount -t ext4 /dev/HostVG/var_log " + tmp,
		"cp -ax --sparse=always " + f.root + "/var/log/. " + tmp + "/",
		"umount " + tmp,
		"lvchange --activate y --ignoreactivationskip HostVG/Base-1-0+2",
		"blkid -p -o value -s TYPE /dev/HostVG/Base-1-0+2",
		"mount -t ext4 /dev/HostVG/Base-1-0+2 " + l2,
		"umount " + l2,
		"lvchange --activate n HostVG/Base-1-0+2",
		"mount -t ext4 -o discard /dev/HostVG/var_log " + f.root + "/var/log",
		"systemctl daemon-reload",
	})
	want := rootFstab + "/dev/HostVG/var_log /var/log ext4 defaults,discard 0 2\n"
	if got := read(t, filepath.Join(f.root, "etc/fstab")); got != want {
		t.Errorf("running fstab:\n%s\nwant:\n%s", got, want)
	}
	if got := read(t, filepath.Join(l2, "etc/fstab")); got != want {
		t.Errorf("fstab of Base-1-0+2:\n%s\nwant:\n%s", got, want)
	}
	// The copy is real (cp ran on the fake mount directory) and nothing
	// was deleted from the source.
	if got := read(t, filepath.Join(tmp, "apt/history.log")); got != "install x\n" {
		t.Errorf("copied file: %q", got)
	}
	if got := read(t, filepath.Join(f.root, "var/log/messages")); got != "boot ok\n" {
		t.Errorf("source file: %q", got)
	}
	if st, err := os.Stat(tmp); err != nil || st.Mode().Perm() != 0o751 {
		t.Errorf("volume root mode: %v %v", st.Mode(), err)
	}
	if res.LV != "var_log" || res.Dev != "/dev/HostVG/var_log" || res.Size != 8<<30 || res.FSType != "ext4" || !res.Mounted || res.Hidden != "/var/log" || len(res.Changed) != 0 {
		t.Errorf("result %+v", res)
	}
}

func TestCreateXFSWhenRootIsXFS(t *testing.T) {
	f, _ := createFixture(t)
	f.m.RootFSType = func() string { return "xfs" }
	if _, err := f.m.Create(context.Background(), "/var/log", "1G"); err != nil {
		t.Fatal(err)
	}
	lines := f.rec.Lines()
	if lines[2] != "mkfs.xfs -q -K /dev/HostVG/var_log" {
		t.Errorf("mkfs: %s", lines[2])
	}
	if !strings.Contains(read(t, filepath.Join(f.root, "etc/fstab")), "/dev/HostVG/var_log /var/log xfs defaults,discard 0 2\n") {
		t.Errorf("fstab lacks the xfs line")
	}
}

func TestCreateNestedGoesAfterItsParent(t *testing.T) {
	f, _ := createFixture(t, row{name: "var", attr: "Vwi-aotz--", tags: lvm.TagVolume, size: 15 << 30, major: 254, minor: 10, data: "5.00"})
	f.mount("/var", "254:10", "ext4", "/dev/mapper/HostVG-var")
	parent := rootFstab + "/dev/HostVG/var /var ext4 defaults,discard 0 2\nUUID=d1 /srv ext4 defaults 0 2\n"
	f.write(t, "etc/fstab", parent)
	if _, err := f.m.Create(context.Background(), "/var/log", "1G"); err != nil {
		t.Fatal(err)
	}
	want := parent + "/dev/HostVG/var_log /var/log ext4 defaults,discard 0 2\n"
	if got := read(t, filepath.Join(f.root, "etc/fstab")); got != want {
		t.Errorf("fstab:\n%s\nwant:\n%s", got, want)
	}
}

func TestCreateRefusalsRunNothing(t *testing.T) {
	volRow := row{name: "var_log", attr: "Vwi-aotz--", tags: lvm.TagVolume, size: 1 << 30, major: 254, minor: 11}
	cases := []struct {
		name, path, size, msg string
		rows                  []row
		setup                 func(*fixture)
		noLVS                 bool
	}{
		{name: "relative", path: "var/log", size: "1G", msg: "absolute path", noLVS: true},
		{name: "unclean", path: "/var/log/", size: "1G", msg: "write the path as /var/log", noLVS: true},
		{name: "root", path: "/", size: "1G", msg: "the root is the layer", noLVS: true},
		{name: "boot", path: "/boot", size: "1G", msg: "belongs to the OS image", noLVS: true},
		{name: "below etc", path: "/etc/pki", size: "1G", msg: "belongs to the OS image", noLVS: true},
		{name: "underscore", path: "/var/lib/my_db", size: "1G", msg: `character '_'`, noLVS: true},
		{name: "reserved", path: "/var/tmeta", size: "1G", msg: "lvm2 reserves", noLVS: true},
		{name: "bad size", path: "/var/log", size: "lots", msg: "cannot read size", noLVS: true},
		{name: "missing dir", path: "/srv/data", size: "1G", msg: "create the directory first", noLVS: true},
		{name: "symlink", path: "/var/lock", size: "1G", msg: "is a symlink", noLVS: true, setup: func(f *fixture) {
			os.Symlink("/run/lock", filepath.Join(f.root, "var/lock"))
		}},
		{name: "file", path: "/var/log/messages", size: "1G", msg: "not a directory", noLVS: true},
		{name: "exists", path: "/var/log", size: "1G", msg: "it exists", rows: []row{volRow}},
		{name: "name taken", path: "/var/log", size: "1G", msg: "is no volume", rows: []row{{name: "var_log", attr: "Vwi-a-tz--", size: 1 << 30, major: 254, minor: 12}}},
		{name: "volume below", path: "/var", size: "1G", msg: "volume /var/log lies below it", rows: []row{volRow}},
		{name: "mount point", path: "/var/log", size: "1G", msg: "already a mount point", setup: func(f *fixture) {
			f.mount("/var/log", "8:3", "xfs", "/dev/sda3")
		}},
		{name: "mount below", path: "/var", size: "1G", msg: "/var/lib/nfs/rpc_pipefs mounted below it", setup: func(f *fixture) {
			f.mount("/var/lib/nfs/rpc_pipefs", "0:50", "rpc_pipefs", "sunrpc")
		}},
		{name: "too small", path: "/var/log", size: "8k", msg: "give a size of at least", setup: func(f *fixture) {
			f.write(nil, "var/log/big", strings.Repeat("x", 64<<10))
		}},
		{name: "pool full", path: "/var/log", size: "1G", msg: "pool HostVG/pool00 has 4096 bytes free", rows: []row{
			{name: "pool00", attr: "twi-aotz--", tags: lvm.TagPool, size: 16384, major: 254, minor: 3, data: "75.00"},
		}},
		{name: "in fstab", path: "/var/log", size: "1G", msg: "/etc/fstab already mounts /dev/sdb1 there", setup: func(f *fixture) {
			f.write(nil, "etc/fstab", rootFstab+"/dev/sdb1 /var/log ext4 noauto 0 0\n")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := createFixture(t, tc.rows...)
			if tc.setup != nil {
				tc.setup(f)
			}
			_, err := f.m.Create(context.Background(), tc.path, tc.size)
			var r *ErrRefused
			if !errors.As(err, &r) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %v; want a refusal with %q", err, tc.msg)
			}
			want := []string{lvsLine}
			if tc.noLVS {
				want = nil
			}
			wantLines(t, f.rec.Lines(), want)
			if got := read(t, filepath.Join(f.root, "etc/fstab")); tc.name != "in fstab" && got != rootFstab {
				t.Errorf("fstab changed:\n%s", got)
			}
		})
	}
}

func TestCreateNotInitialized(t *testing.T) {
	f, _ := createFixture(t)
	f.rec = nil
	f.m.Run = (&fakeLVS{report: `{"report":[{"lv":[]}]}`})
	if _, err := f.m.Create(context.Background(), "/var/log", "1G"); !errors.Is(err, layout.ErrNotInitialized) {
		t.Errorf("error %v", err)
	}
}

type fakeLVS struct{ report string }

func (f *fakeLVS) Run(_ context.Context, c command.Cmd) ([]byte, error) {
	if c.Mutating {
		return nil, errors.New("mutating command run: " + c.String())
	}
	return []byte(f.report), nil
}

func TestCreateUndoesWhenTheCopyDiffers(t *testing.T) {
	f, c := createFixture(t)
	tmp := filepath.Join(f.mnt, "var_log")
	c.after = func([]string) { os.WriteFile(filepath.Join(tmp, "apt/history.log"), []byte("install y\n"), 0o644) }
	_, err := f.m.Create(context.Background(), "/var/log", "1G")
	var mm *MismatchError
	if !errors.As(err, &mm) || mm.Path != "apt/history.log" {
		t.Fatalf("error %v; want a mismatch of apt/history.log", err)
	}
	wantLines(t, f.rec.Mutations(), []string{
		"lvcreate --thin --virtualsize 1073741824b --name var_log --addtag imgbased:volume HostVG/pool00",
		"mkfs.ext4 -q -E nodiscard /dev/HostVG/var_log",
		"mount -t ext4 /dev/HostVG/var_log " + tmp,
		"cp -ax --sparse=always " + f.root + "/var/log/. " + tmp + "/",
		"umount " + tmp,
		"lvremove --yes HostVG/var_log",
	})
	if got := read(t, filepath.Join(f.root, "etc/fstab")); got != rootFstab {
		t.Errorf("fstab changed:\n%s", got)
	}
}

func TestCreateUndoesEveryFstabWhenTheMountFails(t *testing.T) {
	f, _ := createFixture(t)
	f.rec.On("mount -t ext4 -o discard /dev/HostVG/var_log", "", &command.Error{Argv: []string{"mount"}, ExitCode: 32, Stderr: "mount: busy"})
	_, err := f.m.Create(context.Background(), "/var/log", "1G")
	if err == nil || !strings.Contains(err.Error(), "cannot mount /dev/HostVG/var_log") {
		t.Fatalf("error %v", err)
	}
	l2 := filepath.Join(f.mnt, "Base-1-0+2")
	muts := f.rec.Mutations()
	wantLines(t, muts[len(muts)-6:], []string{
		"mount -t ext4 -o discard /dev/HostVG/var_log " + f.root + "/var/log",
		"lvchange --activate y --ignoreactivationskip HostVG/Base-1-0+2",
		"mount -t ext4 /dev/HostVG/Base-1-0+2 " + l2,
		"umount " + l2,
		"lvchange --activate n HostVG/Base-1-0+2",
		"lvremove --yes HostVG/var_log",
	})
	if got := read(t, filepath.Join(f.root, "etc/fstab")); got != rootFstab {
		t.Errorf("running fstab not restored:\n%s", got)
	}
	if got := read(t, filepath.Join(l2, "etc/fstab")); got != rootFstab {
		t.Errorf("fstab of Base-1-0+2 not restored:\n%s", got)
	}
}

func TestCreateReportsFilesChangedDuringTheCopy(t *testing.T) {
	f, c := createFixture(t)
	// A log written while cp runs: its copy is older than the source.
	c.after = func([]string) {
		os.WriteFile(filepath.Join(f.root, "var/log/messages"), []byte("boot ok\nmore\n"), 0o644)
	}
	res, err := f.m.Create(context.Background(), "/var/log", "1G")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(res.Changed, ",")
	if !strings.Contains(got, "messages") {
		t.Errorf("changed: %v", res.Changed)
	}
}

func TestCreateDryRunChangesNothing(t *testing.T) {
	f, _ := createFixture(t)
	f.m.Run = &command.Dry{Next: f.rec, Out: f.out}
	if _, err := f.m.Create(context.Background(), "/var/log", "1G"); err != nil {
		t.Fatal(err)
	}
	if m := f.rec.Mutations(); len(m) != 0 {
		t.Errorf("ran %v", m)
	}
	if got := read(t, filepath.Join(f.root, "etc/fstab")); got != rootFstab {
		t.Errorf("fstab changed:\n%s", got)
	}
	if got := read(t, filepath.Join(f.mnt, "Base-1-0+2/etc/fstab")); got != rootFstab {
		t.Errorf("layer fstab changed:\n%s", got)
	}
	if _, err := os.Stat(filepath.Join(f.mnt, "var_log")); !os.IsNotExist(err) {
		t.Errorf("mount directory made: %v", err)
	}
	out := f.out.String()
	for _, want := range []string{
		"lvcreate --thin --virtualsize 1073741824b --name var_log",
		"cp -ax --sparse=always",
		"lvchange --activate y --ignoreactivationskip HostVG/Base-1-0+2",
		"lvchange --activate n HostVG/Base-1-0+2",
		"# write " + filepath.Join(f.root, "etc/fstab") + ": add /dev/HostVG/var_log /var/log ext4 defaults,discard 0 2",
		"mount -t ext4 -o discard /dev/HostVG/var_log " + f.root + "/var/log",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry output lacks %q:\n%s", want, out)
		}
	}
}
