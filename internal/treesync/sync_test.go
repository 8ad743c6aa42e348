package treesync

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/imgbase/imgbase/internal/manifest"
)

// tempDir is on the real disk: xattrs and holes behave as on a base.
func tempDir(t testing.TB) string {
	d, err := os.MkdirTemp("/var/tmp", "treesync-test-")
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

func build(t testing.TB, root string) *manifest.Manifest {
	t.Helper()
	m, err := manifest.Build(context.Background(), root, manifest.BuildOptions{})
	must(t, err)
	return m
}

// syncAndCompare syncs dst to src and requires the destination's manifest
// to equal the source's, mtimes included.
func syncAndCompare(t testing.TB, src, dst string) Report {
	t.Helper()
	r, err := Sync(context.Background(), src, dst, Options{})
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	if d := manifest.Compare(build(t, src), build(t, dst), manifest.CompareOptions{Times: true}); len(d) != 0 {
		t.Fatalf("after sync, %d differences: %v", len(d), d)
	}
	return r
}

// tree writes a tree described by a small language, one entry per line:
// "f path content [mode]", "d path [mode]", "l path target", "h path existing",
// "c/b path major minor", "p path" (fifo), "s path" (socket), "x path name value".
func tree(t testing.TB, root, spec string) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(spec), "\n") {
		f := strings.Fields(line)
		p := filepath.Join(root, f[1])
		mode := func(i int, def uint32) uint32 {
			if len(f) > i {
				var m uint32
				fmt.Sscanf(f[i], "%o", &m)
				return m
			}
			return def
		}
		switch f[0] {
		case "f":
			must(t, os.WriteFile(p, []byte(f[2]), 0o600))
			must(t, unix.Chmod(p, mode(3, 0o644)))
		case "d":
			must(t, os.MkdirAll(p, 0o755))
			must(t, unix.Chmod(p, mode(2, 0o755)))
		case "l":
			must(t, os.Symlink(f[2], p))
		case "h":
			must(t, os.Link(filepath.Join(root, f[2]), p))
		case "c", "b":
			var maj, min uint32
			fmt.Sscan(f[2], &maj)
			fmt.Sscan(f[3], &min)
			typ := uint32(unix.S_IFCHR)
			if f[0] == "b" {
				typ = unix.S_IFBLK
			}
			must(t, unix.Mknod(p, typ|0o600, int(unix.Mkdev(maj, min))))
		case "p":
			must(t, unix.Mkfifo(p, 0o600))
		case "s":
			must(t, unix.Mknod(p, unix.S_IFSOCK|0o600, 0))
		case "x":
			must(t, unix.Lsetxattr(p, f[2], []byte(f[3]), 0))
		default:
			t.Fatalf("bad spec line %q", line)
		}
	}
}

// settle gives every entry of both trees one mtime, so that a test's counts
// show only the changes it made: two trees made one after the other differ
// in mtimes by chance, and so may two files of one tree that the other
// holds as one hard-linked inode.
func settle(t testing.TB, src, dst string) {
	t.Helper()
	ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Sec: 1_000_000_000}}
	for _, root := range []string{src, dst} {
		// Deepest first: a directory's mtime is set after its entries'.
		es := build(t, root).Entries
		for i := len(es) - 1; i >= 0; i-- {
			must(t, unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(root, es[i].Path), ts, unix.AT_SYMLINK_NOFOLLOW))
		}
	}
}

func ino(t testing.TB, p string) uint64 {
	var st unix.Stat_t
	must(t, unix.Lstat(p, &st))
	return st.Ino
}

// capability is a valid security.capability value (v2): cap_net_raw, effective.
func capability() []byte {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], 0x02000001)
	binary.LittleEndian.PutUint32(b[4:], 1<<unix.CAP_NET_RAW)
	return b
}

const everyType = `
d etc
f etc/passwd root:x:0:0
f usr-bin-su su 4755
d tmp 1777
l etc/mtab /proc/self/mounts
l dangling ../../nowhere
h etc/passwd-link etc/passwd
c null 1 3
b loop0 7 0
p fifo
s sock
x etc/passwd user.note hello
d empty
`

func TestSyncEveryTypeIntoEmpty(t *testing.T) {
	src, dst := tempDir(t), tempDir(t)
	tree(t, src, everyType)
	must(t, unix.Lsetxattr(filepath.Join(src, "usr-bin-su"), "security.capability", capability(), 0))
	must(t, os.Lchown(filepath.Join(src, "sock"), 1, 2))
	must(t, os.Lchown(filepath.Join(src, "etc/mtab"), 3, 4))
	settle(t, src, dst)
	r := syncAndCompare(t, src, dst)
	if r.Added != 12 || r.Unchanged != 1 || r.MetadataOnly+r.Rewritten+r.Removed != 0 {
		t.Errorf("report %+v", r)
	}
	if r.BytesWritten != int64(len("root:x:0:0")+len("su")) {
		t.Errorf("bytes written %d", r.BytesWritten)
	}
	if ino(t, filepath.Join(dst, "etc/passwd")) != ino(t, filepath.Join(dst, "etc/passwd-link")) {
		t.Error("hard link not kept")
	}
	// Syncing again writes nothing.
	r = syncAndCompare(t, src, dst)
	if r.Unchanged != 13 || r.BytesWritten != 0 {
		t.Errorf("second sync: %+v", r)
	}
}

func TestSyncTypeChanges(t *testing.T) {
	src, dst := tempDir(t), tempDir(t)
	tree(t, dst, `
f file-to-dir data
d dir-to-file/sub/deeper
f dir-to-file/sub/deeper/f deep
f file-to-symlink x
l symlink-to-file target
d dir-to-symlink
f dir-to-symlink/inner x
l symlink-to-dir target
p fifo-to-char
c char-to-file 1 3
f keep same
`)
	tree(t, src, `
d file-to-dir
f file-to-dir/child c
f dir-to-file now-a-file
l file-to-symlink /etc
f symlink-to-file now-a-file
l dir-to-symlink /
d symlink-to-dir
f symlink-to-dir/c c
c fifo-to-char 1 5
f char-to-file c
f keep same
`)
	settle(t, src, dst)
	r := syncAndCompare(t, src, dst)
	if r.Rewritten != 8 || r.Unchanged != 2 || r.MetadataOnly != 0 || r.Added != 2 || r.Removed != 4 {
		t.Errorf("report %+v", r)
	}
}

func TestSyncHardLinkGroupsSplitAndJoin(t *testing.T) {
	src, dst := tempDir(t), tempDir(t)
	// dst: a=b=c one inode; d and e separate with equal content; f=g.
	tree(t, dst, `
f a same
h b a
h c a
f d other
f e other
f f third
h g f
f h old
h i h
`)
	// src: a=b, c alone; d=e joined; f alone, g alone with new content;
	// h=i still one group but with new content: both must be the new inode.
	tree(t, src, `
f a same
h b a
f c same
f d other
h e d
f f third
f g changed
f h new!
h i h
`)
	settle(t, src, dst)
	ia, id, iff := ino(t, filepath.Join(dst, "a")), ino(t, filepath.Join(dst, "d")), ino(t, filepath.Join(dst, "f"))
	r := syncAndCompare(t, src, dst)
	if ino(t, filepath.Join(dst, "a")) != ia || ino(t, filepath.Join(dst, "d")) != id || ino(t, filepath.Join(dst, "f")) != iff {
		t.Error("an inode the source's group could keep was replaced")
	}
	if ino(t, filepath.Join(dst, "c")) == ia || ino(t, filepath.Join(dst, "e")) != id {
		t.Error("groups not split or joined")
	}
	if ino(t, filepath.Join(dst, "h")) != ino(t, filepath.Join(dst, "i")) {
		t.Error("a group with new content was split")
	}
	// a, b, d, f kept; c (split: new copy), e (joined: link), g, h (new
	// content) and i (link to the new h) rewritten.
	if r.Unchanged != 5 || r.Rewritten != 5 || r.BytesWritten != int64(len("same")+len("changed")+len("new!")) {
		t.Errorf("report %+v", r)
	}
}

func TestSyncXattrsAndModeInPlace(t *testing.T) {
	src, dst := tempDir(t), tempDir(t)
	data := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	for _, root := range []string{src, dst} {
		must(t, os.WriteFile(filepath.Join(root, "mode"), data, 0o644))
		must(t, os.WriteFile(filepath.Join(root, "xattrs"), data, 0o755))
		must(t, os.WriteFile(filepath.Join(root, "owner"), data, 0o4755))
		must(t, unix.Chmod(filepath.Join(root, "owner"), 0o4755))
	}
	must(t, unix.Chmod(filepath.Join(src, "mode"), 0o600))
	tree(t, dst, `
x xattrs user.old gone
x xattrs user.keep 1
`)
	tree(t, src, `
x xattrs user.keep 2
x xattrs user.new new
`)
	must(t, unix.Lsetxattr(filepath.Join(src, "xattrs"), "security.capability", capability(), 0))
	// chown clears setuid and capabilities: the sync must set them back after.
	must(t, os.Chown(filepath.Join(src, "owner"), 1000, 1000))
	must(t, unix.Chmod(filepath.Join(src, "owner"), 0o4755))
	must(t, unix.Lsetxattr(filepath.Join(src, "owner"), "security.capability", capability(), 0))
	before := map[string]unix.Stat_t{}
	for _, n := range []string{"mode", "xattrs", "owner"} {
		var st unix.Stat_t
		must(t, unix.Lstat(filepath.Join(dst, n), &st))
		before[n] = st
	}
	settle(t, src, dst)
	r := syncAndCompare(t, src, dst)
	if r.MetadataOnly != 3 || r.BytesWritten != 0 || r.Rewritten != 0 {
		t.Errorf("report %+v", r)
	}
	for n, b := range before {
		var st unix.Stat_t
		must(t, unix.Lstat(filepath.Join(dst, n), &st))
		// Blocks may grow by an xattr block; the data's are the same.
		if st.Ino != b.Ino || (n == "mode" && st.Blocks != b.Blocks) {
			t.Errorf("%s was rewritten: inode %d→%d", n, b.Ino, st.Ino)
		}
	}
}

func TestSyncSparseFileKeepsHoles(t *testing.T) {
	src, dst := tempDir(t), tempDir(t)
	const size = 64 << 20
	f, err := os.Create(filepath.Join(src, "sparse"))
	must(t, err)
	must(t, f.Truncate(size))
	_, err = f.WriteAt(bytes.Repeat([]byte{1}, 1<<20), 8<<20)
	must(t, err)
	_, err = f.WriteAt([]byte("tail"), size-4)
	must(t, err)
	must(t, f.Close())
	// The destination's old version is fully allocated.
	must(t, os.WriteFile(filepath.Join(dst, "sparse"), bytes.Repeat([]byte{2}, size), 0o644))
	r := syncAndCompare(t, src, dst)
	var st, sst unix.Stat_t
	must(t, unix.Stat(filepath.Join(dst, "sparse"), &st))
	must(t, unix.Stat(filepath.Join(src, "sparse"), &sst))
	if st.Blocks*512 > 2<<20 || st.Blocks != sst.Blocks {
		t.Errorf("holes filled: %d blocks in the copy, %d in the source", st.Blocks, sst.Blocks)
	}
	if r.BytesWritten > 2<<20 || r.BytesWritten < 1<<20 {
		t.Errorf("bytes written %d", r.BytesWritten)
	}
}

// manyFiles writes n small files in n/100 directories.
func manyFiles(t testing.TB, root string, n int) {
	for i := 0; i < n; i++ {
		dir := filepath.Join(root, fmt.Sprintf("d%03d", i/100))
		if i%100 == 0 {
			must(t, os.Mkdir(dir, 0o755))
		}
		must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d", i)), bytes.Repeat([]byte{byte(i)}, 512+i%2048), 0o644))
	}
}

// changeEvery rewrites one file in every `step` with content one byte longer.
func changeEvery(t testing.TB, root string, n, step int, tag byte) (changed int64) {
	for i := 0; i < n; i += step {
		p := filepath.Join(root, fmt.Sprintf("d%03d/f%04d", i/100, i))
		data := bytes.Repeat([]byte{tag}, 513+i%2048)
		must(t, os.WriteFile(p, data, 0o644))
		changed += int64(len(data))
	}
	return changed
}

func TestSyncTenThousandFiles(t *testing.T) {
	src, dst := tempDir(t), tempDir(t)
	manyFiles(t, src, 10000)
	r := syncAndCompare(t, src, dst)
	if r.Added != 10100 {
		t.Fatalf("first sync: %+v", r)
	}
	changed := changeEvery(t, src, 10000, 33, 0xaa) // 304 files, 3 %
	est := EstimateSync(build(t, src), build(t, dst))
	r = syncAndCompare(t, src, dst)
	if r.Rewritten != 304 || r.BytesWritten != changed || r.Added+r.Removed+r.MetadataOnly != 0 {
		t.Errorf("second sync: %+v (changed %d bytes)", r, changed)
	}
	if est.Report != r || !est.Delta() || est.FullBytes <= changed {
		t.Errorf("estimate %+v, sync %+v", est, r)
	}
}

func TestSyncDoesNotFollowDestinationSymlinks(t *testing.T) {
	src, dst, outside := tempDir(t), tempDir(t), tempDir(t)
	canary := "imgbase-treesync-escape-" + filepath.Base(dst)
	t.Cleanup(func() { os.Remove("/" + canary) })
	must(t, os.WriteFile(filepath.Join(outside, "victim"), []byte("untouched"), 0o644))
	tree(t, src, `
d root
f root/`+canary+` written
d out
f out/victim overwritten
f file new 600
`)
	must(t, os.Symlink("/", filepath.Join(dst, "root")))
	must(t, os.Symlink(outside, filepath.Join(dst, "out")))
	must(t, os.Symlink(filepath.Join(outside, "victim"), filepath.Join(dst, "file")))
	syncAndCompare(t, src, dst)
	if _, err := os.Lstat("/" + canary); err == nil {
		t.Fatal("the sync wrote through a symlink to /")
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "victim")); string(b) != "untouched" {
		t.Fatal("the sync wrote through a symlink out of the tree")
	}
	var st unix.Stat_t
	must(t, unix.Stat(filepath.Join(outside, "victim"), &st))
	if st.Mode&0o777 != 0o644 {
		t.Fatal("the sync changed the mode of a file out of the tree")
	}

	// A destination manifest that lies (a directory where there is a
	// symlink to outside) makes the sync fail, not write outside.
	dst2 := tempDir(t)
	must(t, os.Symlink(outside, filepath.Join(dst2, "out")))
	srcM := build(t, src)
	lie := build(t, src)
	lie.Entries = lie.Entries[:0]
	for _, e := range srcM.Entries {
		if e.Path == "." || e.Path == "out" {
			lie.Entries = append(lie.Entries, e)
		}
	}
	if _, err := Sync(context.Background(), src, dst2, Options{Src: srcM, Dst: lie}); err == nil {
		t.Error("sync through a lying manifest succeeded")
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "victim")); string(b) != "untouched" {
		t.Fatal("the sync wrote through a symlink the manifest called a directory")
	}
	if _, err := os.Lstat(filepath.Join(outside, ".imgbase")); err == nil {
		t.Fatal("temporary file left outside")
	}
}

func TestSyncRefusesSourceNotMatchingItsManifest(t *testing.T) {
	src, dst := tempDir(t), tempDir(t)
	tree(t, src, "f a original")
	m := build(t, src)
	must(t, os.WriteFile(filepath.Join(src, "a"), []byte("modified"), 0o644))
	if _, err := Sync(context.Background(), src, dst, Options{Src: m}); err == nil {
		t.Fatal("copied content that is not what the manifest says")
	}
	if names, _ := os.ReadDir(dst); len(names) != 0 {
		t.Errorf("left %v behind", names)
	}
}

func TestSyncLeavesExcludedPathsAlone(t *testing.T) {
	src, dst := tempDir(t), tempDir(t)
	tree(t, src, `
d .imgbase
f .imgbase/manifest from-source
f a a
`)
	tree(t, dst, `
d .imgbase
f .imgbase/manifest recorded
`)
	o := Options{Exclude: []string{".imgbase"}}
	if _, err := Sync(context.Background(), src, dst, o); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, ".imgbase/manifest")); string(b) != "recorded" {
		t.Errorf("excluded file is %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "a")); string(b) != "a" {
		t.Errorf("a is %q", b)
	}
}

// TestSyncBetweenRealTrees turns one system tree into another and back:
// real names, modes, symlinks and sizes, nearly everything removed or added.
func TestSyncBetweenRealTrees(t *testing.T) {
	trees := []string{"/usr/share/zoneinfo", "/usr/share/perl5", "/usr/lib/x86_64-linux-gnu/perl-base", "/usr/share/zoneinfo"}
	for _, p := range trees {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("no %s here", p)
		}
	}
	dst := tempDir(t)
	for _, src := range trees {
		syncAndCompare(t, src, dst)
	}
	r := syncAndCompare(t, trees[0], dst)
	if r.BytesWritten != 0 || r.Unchanged != len(build(t, dst).Entries) {
		t.Errorf("syncing an equal tree: %+v", r)
	}
}

func TestEstimateSaysWhenAFullCopyIsCheaper(t *testing.T) {
	src, dst := tempDir(t), tempDir(t)
	tree(t, dst, "f a 0123456789\nf b 0123456789\nf c same")
	tree(t, src, "f a abcdefghij\nf b abcdefghij\nf c same\nl d c")
	settle(t, src, dst)
	est := EstimateSync(build(t, src), build(t, dst))
	if est.BytesWritten != 20 || est.FullBytes != 24 || !est.Delta() {
		t.Errorf("estimate %+v", est)
	}
	tree(t, src, "f e 0123456789012345678901234567890123456789")
	est = EstimateSync(build(t, src), build(t, dst))
	if est.BytesWritten != 60 || est.FullBytes != 64 || !est.Delta() {
		t.Errorf("estimate %+v", est)
	}
	must(t, os.WriteFile(filepath.Join(src, "c"), []byte("changed"), 0o644))
	est = EstimateSync(build(t, src), build(t, dst))
	if est.BytesWritten != est.FullBytes || est.Delta() {
		t.Errorf("everything changed, yet %+v", est)
	}
}

// A directory in which nothing changes is not entered: a sync of a
// snapshot whose page cache is cold would open every directory of the
// tree. Dst says the destination's unchanged directory is as wanted; it is
// moved away after being described, so entering it would fail.
func TestSyncSkipsUnchangedDirectories(t *testing.T) {
	src, dst := tempDir(t), tempDir(t)
	spec := "d a\nd a/b\nf a/b/same same\nd c\nf c/file old\nd e\nf e/gone bye\n"
	tree(t, src, spec)
	tree(t, dst, spec)
	must(t, os.WriteFile(filepath.Join(src, "c", "file"), []byte("new"), 0o644))
	must(t, os.Remove(filepath.Join(src, "e", "gone")))
	settle(t, src, dst)
	srcM, dstM := build(t, src), build(t, dst)
	must(t, os.Rename(filepath.Join(dst, "a"), filepath.Join(dst, "a.moved")))
	r, err := Sync(context.Background(), src, dst, Options{Src: srcM, Dst: dstM, Exclude: []string{"a.moved"}})
	if err != nil {
		t.Fatalf("sync entered the unchanged directory a: %v", err)
	}
	if r.Rewritten != 1 || r.Removed != 1 {
		t.Errorf("report %+v, want c/file rewritten and e/gone removed", r)
	}
	// The test's own renames changed the root's mtime; every other
	// entry's, c's (entered) among them, is the source's.
	must(t, os.Rename(filepath.Join(dst, "a.moved"), filepath.Join(dst, "a")))
	for _, d := range manifest.Compare(build(t, src), build(t, dst), manifest.CompareOptions{Times: true}) {
		if d.Path != "." || d.Kind != manifest.TimeDiff {
			t.Errorf("after sync: %v", d)
		}
	}
}
