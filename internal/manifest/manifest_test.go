package manifest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// tempDir is on the real disk: tmpfs has no user.* xattrs on older kernels.
func tempDir(t testing.TB) string {
	d, err := os.MkdirTemp("/var/tmp", "manifest-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func build(t testing.TB, root string) *Manifest {
	t.Helper()
	m, err := Build(context.Background(), root, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// everyType makes a tree holding one entry of each kind Build knows.
func everyType(t *testing.T, root string) {
	must(t, os.WriteFile(filepath.Join(root, "file"), []byte("hello\n"), 0o644))
	must(t, unix.Chmod(filepath.Join(root, "file"), 0o4755))
	must(t, os.Mkdir(filepath.Join(root, "dir"), 0o1777))
	must(t, unix.Chmod(filepath.Join(root, "dir"), 0o1777))
	must(t, os.Symlink("/", filepath.Join(root, "dir", "up")))
	must(t, os.Link(filepath.Join(root, "file"), filepath.Join(root, "dir", "hard")))
	must(t, unix.Mknod(filepath.Join(root, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(t, unix.Mknod(filepath.Join(root, "loop"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 1000))))
	must(t, unix.Mkfifo(filepath.Join(root, "fifo"), 0o600))
	must(t, unix.Mknod(filepath.Join(root, "sock"), unix.S_IFSOCK|0o755, 0))
	must(t, os.Lchown(filepath.Join(root, "sock"), 12, 34))
	must(t, unix.Lsetxattr(filepath.Join(root, "file"), "user.b", []byte("2"), 0))
	must(t, unix.Lsetxattr(filepath.Join(root, "file"), "user.a", []byte{0, 1, 2}, 0))
	// mknod and mkfifo apply the umask.
	for n, mode := range map[string]uint32{"null": 0o666, "loop": 0o660, "sock": 0o755} {
		must(t, unix.Chmod(filepath.Join(root, n), mode))
	}
}

func TestBuildEveryType(t *testing.T) {
	root := tempDir(t)
	everyType(t, root)
	m := build(t, root)
	var paths []string
	for _, e := range m.Entries {
		paths = append(paths, e.Path)
	}
	if got, want := strings.Join(paths, " "), ". dir dir/hard dir/up fifo file loop null sock"; got != want {
		t.Fatalf("paths %q, want %q", got, want)
	}
	idx := m.Index()
	sum := sha256.Sum256([]byte("hello\n"))
	for _, c := range []struct {
		path string
		want Entry
	}{
		{"dir", Entry{Type: Dir, Mode: 0o1777}},
		{"dir/hard", Entry{Type: File, Mode: 0o4755, Size: 6, SHA256: sum, Link: "dir/hard"}},
		{"dir/up", Entry{Type: Symlink, Target: "/"}},
		{"fifo", Entry{Type: FIFO, Mode: 0o600}},
		{"file", Entry{Type: File, Mode: 0o4755, Size: 6, SHA256: sum, Link: "dir/hard"}},
		{"loop", Entry{Type: Block, Mode: 0o660, Rdev: unix.Mkdev(7, 1000)}},
		{"null", Entry{Type: Char, Mode: 0o666, Rdev: unix.Mkdev(1, 3)}},
		{"sock", Entry{Type: Socket, Mode: 0o755, UID: 12, GID: 34}},
	} {
		e := idx[c.path]
		if c.want.Link == c.path {
			c.want.Link = "" // the head of its group
		}
		if e.Type != c.want.Type || e.Mode != c.want.Mode || e.UID != c.want.UID || e.GID != c.want.GID ||
			e.Size != c.want.Size || e.SHA256 != c.want.SHA256 || e.Rdev != c.want.Rdev || e.Target != c.want.Target || e.Link != c.want.Link {
			t.Errorf("%s: got %+v, want %+v", c.path, *e, c.want)
		}
	}
	x := idx["file"].Xattrs
	if len(x) != 2 || x[0].Name != "user.a" || !bytes.Equal(x[0].Value, []byte{0, 1, 2}) || x[1].Name != "user.b" {
		t.Errorf("xattrs of file: %+v", x)
	}
	// The hard-link member carries its group's metadata.
	if !SameMeta(idx["file"], idx["dir/hard"]) {
		t.Errorf("hard-link members differ: %+v %+v", *idx["file"], *idx["dir/hard"])
	}
}

func TestBuildDoesNotFollowSymlinks(t *testing.T) {
	root := tempDir(t)
	outside := tempDir(t)
	must(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("x"), 0o600))
	must(t, os.Symlink(outside, filepath.Join(root, "link")))
	must(t, os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "flink")))
	m := build(t, root)
	if len(m.Entries) != 3 {
		t.Fatalf("entries %+v: a symlink was followed", m.Entries)
	}
	for _, e := range m.Entries[1:] {
		if e.Type != Symlink {
			t.Errorf("%s is %s", e.Path, e.Type)
		}
	}
	// A root given as a symlink is refused rather than followed.
	if _, err := Build(context.Background(), filepath.Join(root, "link"), BuildOptions{}); err == nil {
		t.Error("Build followed a symlink as its root")
	}
}

func TestSparseHashIsLogicalContent(t *testing.T) {
	root := tempDir(t)
	p := filepath.Join(root, "sparse")
	f, err := os.Create(p)
	must(t, err)
	must(t, f.Truncate(10<<20))
	_, err = f.WriteAt([]byte("middle"), 5<<20)
	must(t, err)
	_, err = f.WriteAt([]byte("end"), 10<<20-3)
	must(t, err)
	must(t, f.Close())
	logical, err := os.ReadFile(p)
	must(t, err)
	var st unix.Stat_t
	must(t, unix.Stat(p, &st))
	if st.Blocks*512 >= st.Size {
		t.Fatalf("test file is not sparse: %d blocks", st.Blocks)
	}
	e := build(t, root).Index()["sparse"]
	if e.SHA256 != sha256.Sum256(logical) || e.Size != 10<<20 {
		t.Errorf("hash of a sparse file is not the hash of its content")
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	root := tempDir(t)
	everyType(t, root)
	for _, name := range []string{"a b", "new\nline", "back\\slash", "eq=ual", "\xff\x01bin", "tab\t", "ünï"} {
		must(t, os.WriteFile(filepath.Join(root, name), []byte(name), 0o640))
	}
	must(t, unix.Lsetxattr(filepath.Join(root, "a b"), "user.with space=eq", []byte(""), 0))
	must(t, os.Symlink("target with\nnewline", filepath.Join(root, "dir", "odd")))
	m := build(t, root)
	var buf bytes.Buffer
	must(t, Encode(&buf, m))
	if n := strings.Count(buf.String(), "\n"); n != len(m.Entries)+1 {
		t.Fatalf("%d lines for %d entries:\n%s", n, len(m.Entries), buf.String())
	}
	got, err := Decode(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if d := Compare(m, got, CompareOptions{Times: true}); len(d) != 0 {
		t.Fatalf("round trip differs: %v", d)
	}
	var again bytes.Buffer
	must(t, Encode(&again, got))
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Fatal("re-encoding differs")
	}
}

const sample = header +
	". type=dir mode=0755 uid=0 gid=0 time=1.000000000\n" +
	"a type=file mode=0644 uid=0 gid=0 size=0 sha256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 time=1.000000000\n" +
	"b type=file mode=0644 uid=0 gid=0 size=0 sha256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 link=a time=1.000000000\n" +
	"d type=dir mode=0755 uid=0 gid=0 time=-1.000000005 xattr=user.x=AAE=\n" +
	"d/l type=symlink uid=0 gid=0 target=/etc/x\\x20y time=0.000000000\n" +
	"d/n type=char mode=0666 uid=0 gid=0 rdev=1,3 time=0.000000000\n"

func TestDecodeStrict(t *testing.T) {
	if _, err := Decode(strings.NewReader(sample)); err != nil {
		t.Fatalf("sample refused: %v", err)
	}
	bad := map[string]string{
		"no header":        strings.TrimPrefix(sample, header),
		"empty":            "",
		"header only":      header,
		"no final newline": strings.TrimSuffix(sample, "\n"),
		"root not first":   strings.Replace(sample, ". type=dir", "0 type=dir", 1),
		"out of order":     header + ". type=dir mode=0755 uid=0 gid=0 time=1.000000000\nb type=fifo mode=0644 uid=0 gid=0 time=1.000000000\na type=fifo mode=0644 uid=0 gid=0 time=1.000000000\n",
		"duplicate":        sample + "d/n type=char mode=0666 uid=0 gid=0 rdev=1,3 time=0.000000000\n",
		"no parent":        sample + "x/y type=fifo mode=0644 uid=0 gid=0 time=1.000000000\n",
		"parent not a dir": sample + "d/n/y type=fifo mode=0644 uid=0 gid=0 time=1.000000000\n",
		"dotdot":           sample + "d/.. type=fifo mode=0644 uid=0 gid=0 time=1.000000000\n",
		"raw space escape": sample + "e\\x41 type=fifo mode=0644 uid=0 gid=0 time=1.000000000\n",
		"upper hex":        sample + "e\\x0A type=fifo mode=0644 uid=0 gid=0 time=1.000000000\n",
		"short escape":     sample + "e\\x0 type=fifo mode=0644 uid=0 gid=0 time=1.000000000\n",
		"leading zero":     strings.Replace(sample, "uid=0 gid=0 rdev", "uid=01 gid=0 rdev", 1),
		"mode 5 digits":    strings.Replace(sample, "mode=0666", "mode=00666", 1),
		"missing sha":      strings.Replace(sample, " sha256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 time=1", " time=1", 1),
		"upper sha":        strings.Replace(sample, "sha256=e3b0", "sha256=E3B0", 1),
		"short nsec":       strings.Replace(sample, "time=0.000000000\n", "time=0.0\n", 1),
		"minus zero":       strings.Replace(sample, "time=0.000000000\n", "time=-0.000000000\n", 1),
		"unknown field":    strings.Replace(sample, " time=-1.000000005", " foo=1 time=-1.000000005", 1),
		"field order":      strings.Replace(sample, "uid=0 gid=0 rdev", "gid=0 uid=0 rdev", 1),
		"xattr order":      strings.Replace(sample, "xattr=user.x=AAE=", "xattr=user.x=AAE= xattr=user.a=", 1),
		"bad base64":       strings.Replace(sample, "user.x=AAE=", "user.x=AAE", 1),
		"link to later":    strings.Replace(sample, "link=a", "link=d", 1),
		"link differs":     strings.Replace(sample, "mode=0644 uid=0 gid=0 size=0 sha256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 link", "mode=0600 uid=0 gid=0 size=0 sha256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 link", 1),
		"symlink has mode": strings.Replace(sample, "symlink uid", "symlink mode=0777 uid", 1),
		"empty target":     strings.Replace(sample, "target=/etc/x\\x20y", "target=", 1),
		"double space":     strings.Replace(sample, "uid=0 gid=0 rdev", "uid=0  gid=0 rdev", 1),
		"trailing space":   strings.Replace(sample, "rdev=1,3 time=0.000000000\n", "rdev=1,3 time=0.000000000 \n", 1),
		"cr":               strings.Replace(sample, "rdev=1,3 time=0.000000000\n", "rdev=1,3 time=0.000000000\r\n", 1),
	}
	for name, in := range bad {
		if _, err := Decode(strings.NewReader(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestCompareFindsEachDifference(t *testing.T) {
	want, err := Decode(strings.NewReader(sample))
	must(t, err)
	got, err := Decode(strings.NewReader(sample))
	must(t, err)
	if d := Compare(want, got, CompareOptions{Times: true}); len(d) != 0 {
		t.Fatalf("same manifests differ: %v", d)
	}
	idx := got.Index()
	idx["a"].Mode = 0o600
	idx["a"].UID = 5
	idx["a"].SHA256[0] ^= 1
	idx["b"].Link = ""
	idx["d"].Xattrs = []Xattr{{Name: "user.x", Value: []byte("v")}, {Name: "user.y"}}
	idx["d/l"].Target = "/elsewhere"
	idx["d/n"].Rdev = unix.Mkdev(1, 5)
	idx["d/n"].Sec = 7
	got.Entries = append(got.Entries, Entry{Path: "z", Type: FIFO})
	got.Entries[2].Type = FIFO // "b": a type change hides everything else about it
	var kinds []string
	for _, d := range Compare(want, got, CompareOptions{Times: true}) {
		kinds = append(kinds, d.Path+":"+string(d.Kind))
	}
	wantKinds := "a:mode a:owner a:content b:type d:xattr d:xattr d/l:target d/n:device d/n:mtime z:extra"
	if strings.Join(kinds, " ") != wantKinds {
		t.Errorf("differences %v\nwant %s", kinds, wantKinds)
	}
	if d := Compare(want, got, CompareOptions{}); len(d) != len(kinds)-1 {
		t.Errorf("without times: %v", d)
	}
	missing := Compare(got, want, CompareOptions{})
	if last := missing[len(missing)-1]; last.Path != "z" || last.Kind != Missing {
		t.Errorf("reverse comparison ends with %v", last)
	}
	// A member leaving its group is a hard-link difference.
	g2, _ := Decode(strings.NewReader(sample))
	g2.Index()["b"].Link = ""
	if d := Compare(want, g2, CompareOptions{}); len(d) != 1 || d[0].Kind != HardLink {
		t.Errorf("split group: %v", d)
	}
}

func TestLess(t *testing.T) {
	ordered := []string{".", "a", "a/b", "a/b/c", "a b", "a-b", "a0", "b"}
	for i := range ordered {
		for j := range ordered {
			if Less(ordered[i], ordered[j]) != (i < j) {
				t.Errorf("Less(%q, %q) = %v", ordered[i], ordered[j], !(i < j))
			}
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(sample))
	f.Add([]byte(header + ". type=dir mode=0755 uid=0 gid=0 time=0.000000000\n"))
	f.Add([]byte(header + ". type=dir mode=0755 uid=0 gid=0 time=0.000000000\n\\x0a type=block mode=0600 uid=4294967295 gid=0 rdev=4095,1048575 time=9223372036854775807.999999999\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(bytes.NewReader(data))
		if err != nil {
			return
		}
		// Every accepted input is canonical: it encodes back to itself.
		var buf bytes.Buffer
		if err := Encode(&buf, m); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), data) {
			t.Fatalf("accepted non-canonical input:\n%q\nre-encodes as\n%q", data, buf.Bytes())
		}
		if d := Compare(m, m, CompareOptions{Times: true}); len(d) != 0 {
			t.Fatalf("a manifest differs from itself: %v", d)
		}
	})
}

func TestBuildExclude(t *testing.T) {
	root := tempDir(t)
	must(t, os.MkdirAll(filepath.Join(root, ".imgbase/sub"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, ".imgbase/manifest"), nil, 0o644))
	must(t, os.MkdirAll(filepath.Join(root, "a/.imgbase"), 0o755))
	m, err := Build(context.Background(), root, BuildOptions{Exclude: []string{".imgbase"}})
	must(t, err)
	var paths []string
	for _, e := range m.Entries {
		paths = append(paths, e.Path)
	}
	if got := strings.Join(paths, " "); got != ". a a/.imgbase" {
		t.Errorf("paths %q", got)
	}
}

func TestSaveLoadInTheTreeItDescribes(t *testing.T) {
	root := tempDir(t)
	everyType(t, root)
	o := BuildOptions{Exclude: []string{RecordDir}}
	m, err := Build(context.Background(), root, o)
	must(t, err)
	must(t, Save(filepath.Join(root, RecordPath), m))
	got, err := Load(filepath.Join(root, RecordPath))
	must(t, err)
	// The record does not describe itself, so the tree still verifies...
	now, err := Build(context.Background(), root, o)
	must(t, err)
	if d := Compare(got, now, CompareOptions{}); len(d) != 0 {
		t.Fatalf("differences after recording: %v", d)
	}
	// ...and a change to it shows.
	must(t, os.WriteFile(filepath.Join(root, "file"), []byte("hellO\n"), 0o644))
	now, err = Build(context.Background(), root, o)
	must(t, err)
	if d := Compare(got, now, CompareOptions{}); len(d) != 2 || d[0].Path != "dir/hard" || d[0].Kind != Content {
		t.Fatalf("differences %v", d)
	}
}

// Directories are walked in parallel; the manifest is the same every time:
// in manifest order, each hard-link group headed by its first path in that
// order (whichever path the walk met first), every member with the head's
// hash.
func TestBuildParallelWalkIsDeterministic(t *testing.T) {
	root := tempDir(t)
	for d := range 40 {
		dir := filepath.Join(root, fmt.Sprintf("d%02d", d), "sub")
		must(t, os.MkdirAll(dir, 0o755))
		for f := range 5 {
			must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d", f)), []byte(fmt.Sprintf("%d/%d\n", d, f)), 0o644))
		}
	}
	// One inode linked from the last directory first in walk order, and
	// from the first: the head is d00's.
	must(t, os.WriteFile(filepath.Join(root, "d39", "shared"), []byte("shared\n"), 0o644))
	for _, d := range []string{"d00", "d13", "d27"} {
		must(t, os.Link(filepath.Join(root, "d39", "shared"), filepath.Join(root, d, "shared")))
	}
	want := build(t, root)
	idx := want.Index()
	if h := idx["d00/shared"]; h.Link != "" || h.SHA256 == ([32]byte{}) {
		t.Fatalf("d00/shared: %+v, want the group's head, hashed", h)
	}
	for _, p := range []string{"d13/shared", "d27/shared", "d39/shared"} {
		if e := idx[p]; e.Link != "d00/shared" || e.SHA256 != idx["d00/shared"].SHA256 {
			t.Errorf("%s: link %q, want d00/shared with its hash", p, e.Link)
		}
	}
	var buf bytes.Buffer
	must(t, Encode(&buf, want))
	for range 20 {
		var again bytes.Buffer
		must(t, Encode(&again, build(t, root)))
		if !bytes.Equal(again.Bytes(), buf.Bytes()) {
			t.Fatalf("a second build differs from the first:\n%s\nvs\n%s", again.String(), buf.String())
		}
	}
	// One failure cancels the other walks: the failure is what is reported.
	real := errors.New("cannot read directory d31/sub")
	if got := cause([]error{fmt.Errorf("x: %w", context.Canceled), real, context.Canceled}); got != real {
		t.Errorf("cause = %v, want the failure, not a cancellation", got)
	}
	if got := cause([]error{nil, context.Canceled}); !errors.Is(got, context.Canceled) {
		t.Errorf("cause of cancellations alone = %v", got)
	}
}
