package migrate

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// fixture is three layers built from the same starting /etc; each test
// then changes the running layer (the admin) and the new layer (the image).
type fixture struct {
	t                  *testing.T
	roots              Roots
	old, running, newL string
}

var baseFiles = map[string]string{
	"etc/hostname":           "node1\n",
	"etc/motd":               "welcome\n",
	"etc/ssh/sshd_config":    "PermitRootLogin no\n",
	"etc/conf.d/a":           "a=1\n",
	"etc/conf.d/b":           "b=1\n",
	"etc/deep/x/y/z.conf":    "z\n",
	"etc/passwd":             "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\ngames:x:5:60:games:/usr/games:/usr/sbin/nologin\nsshd:x:100:65534::/run/sshd:/usr/sbin/nologin\n",
	"etc/group":              "root:x:0:\ndaemon:x:1:\nwheel:x:10:root\ngames:x:60:\n",
	"etc/shadow":             "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\ngames:*:19000:0:99999:7:::\nsshd:!:19000::::::\n",
	"etc/gshadow":            "root:*::\ndaemon:*::\nwheel:*::root\ngames:*::\n",
	"etc/alternatives/.keep": "",
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	base := t.TempDir()
	f := &fixture{t: t,
		old:     filepath.Join(base, "old"),
		running: filepath.Join(base, "running"),
		newL:    filepath.Join(base, "new"),
	}
	f.roots = Roots{OldBase: f.old, Running: f.running, New: f.newL}
	for _, root := range []string{f.old, f.running, f.newL} {
		for rel, content := range baseFiles {
			writeFile(t, filepath.Join(root, rel), content, 0o644)
		}
		if err := os.Chmod(filepath.Join(root, "etc/shadow"), 0o640); err != nil {
			t.Fatal(err)
		}
		mustSymlink(t, "../usr/share/zoneinfo/UTC", filepath.Join(root, "etc/localtime"))
	}
	return f
}

func (f *fixture) run() *Report {
	f.t.Helper()
	rep, err := Etc(context.Background(), f.roots, quietLog())
	if err != nil {
		f.t.Fatalf("Etc: %v", err)
	}
	return rep
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func writeFile(t *testing.T, path, content string, perm os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
}

func mustSymlink(t *testing.T, target, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}

func mustRemove(t *testing.T, path string) {
	t.Helper()
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func assertContent(t *testing.T, path, want string) {
	t.Helper()
	if got := readFile(t, path); got != want {
		t.Errorf("%s = %q, want %q", path, got, want)
	}
}

func assertMissing(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists (err %v), want it missing", path, err)
	}
}

func assertLink(t *testing.T, path, target string) {
	t.Helper()
	got, err := os.Readlink(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if got != target {
		t.Errorf("%s -> %q, want -> %q", path, got, target)
	}
}

func has(list []string, p string) bool { return slices.Contains(list, p) }

func conflictAt(rep *Report, p string) *Conflict {
	for i := range rep.Conflicts {
		if rep.Conflicts[i].Path == p {
			return &rep.Conflicts[i]
		}
	}
	return nil
}

// needXattrs skips when the temporary filesystem has no user xattrs.
func needXattrs(t *testing.T) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "probe")
	writeFile(t, p, "", 0o644)
	if err := unix.Setxattr(p, "user.probe", []byte("1"), 0); err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			t.Skip("temporary filesystem has no user xattr support")
		}
		t.Fatal(err)
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to set owners and device nodes")
	}
}

func getX(t *testing.T, path, name string) string {
	t.Helper()
	buf := make([]byte, 1024)
	n, err := unix.Lgetxattr(path, name, buf)
	if err != nil {
		t.Fatalf("getxattr %s %s: %v", path, name, err)
	}
	return string(buf[:n])
}

func setX(t *testing.T, path, name, value string) {
	t.Helper()
	if err := unix.Lsetxattr(path, name, []byte(value), 0); err != nil {
		t.Fatalf("setxattr %s %s: %v", path, name, err)
	}
}

func lstat(t *testing.T, path string) *unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatalf("lstat %s: %v", path, err)
	}
	return &st
}
