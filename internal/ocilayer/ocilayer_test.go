package ocilayer

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// entry is one tar entry of a crafted layer.
type entry struct {
	name, link string
	typ        byte
	mode       int64
	uid, gid   int
	data       []byte
	xattrs     map[string]string
	major      int64
	minor      int64
}

var mtime = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

func makeTar(t *testing.T, es []entry) []byte {
	t.Helper()
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	for _, e := range es {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid,
			Size: int64(len(e.data)), ModTime: mtime, Devmajor: e.major, Devminor: e.minor, Format: tar.FormatPAX}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		for k, v := range e.xattrs {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
		if err := w.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gz(t *testing.T, b []byte) []byte { return gzBench(b) }

func gzBench(b []byte) []byte {
	var out bytes.Buffer
	z := gzip.NewWriter(&out)
	z.Write(b)
	z.Close()
	return out.Bytes()
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// diskDir is a directory on a disk filesystem: tmpfs may lack user xattrs.
func diskDir(t *testing.T) string {
	d, err := os.MkdirTemp("/var/tmp", "ocilayer-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func apply(t *testing.T, root string, blob []byte, l Layer) (Stats, error) {
	t.Helper()
	r, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if l.Digest == "" {
		l.Digest = digest(blob)
	}
	return r.Apply(context.Background(), bytes.NewReader(blob), l, nil)
}

func mustApply(t *testing.T, root string, es []entry) {
	t.Helper()
	if _, err := apply(t, root, gz(t, makeTar(t, es)), Layer{}); err != nil {
		t.Fatal(err)
	}
}

func lstat(t *testing.T, p string) *unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return &st
}

func requireRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: owners, device nodes and security xattrs")
	}
}

func TestEveryEntryType(t *testing.T) {
	requireRoot(t)
	defer unix.Umask(unix.Umask(0o077)) // the modes written do not depend on it
	root := diskDir(t)
	capV := string([]byte{0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}) // cap_net_raw, v2
	sparse := make([]byte, 3<<20)
	copy(sparse, "head")
	copy(sparse[2<<20:], "middle")
	tarBytes := makeTar(t, []entry{
		{name: "./", typ: tar.TypeDir, mode: 0o711, uid: 3},
		{name: "usr/", typ: tar.TypeDir, mode: 0o755},
		{name: "usr/bin/", typ: tar.TypeDir, mode: 0o750, uid: 12, gid: 34},
		{name: "usr/bin/su", mode: 0o4755, data: []byte("su")},
		{name: "usr/bin/sg", mode: 0o2711, gid: 5, data: []byte("sg")},
		{name: "usr/bin/ping", mode: 0o755, data: []byte("ping"), xattrs: map[string]string{
			"security.capability": capV, "user.note": "hi", "security.selinux": "system_u:object_r:ping_exec_t:s0"}},
		{name: "usr/bin/pong", typ: tar.TypeLink, link: "usr/bin/ping"},
		{name: "usr/bin/sh", typ: tar.TypeSymlink, link: "/usr/bin/ping", uid: 7, gid: 8},
		{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		{name: "dev/null", typ: tar.TypeChar, mode: 0o666, major: 1, minor: 3},
		{name: "dev/sda", typ: tar.TypeBlock, mode: 0o660, gid: 6, major: 8, minor: 0},
		{name: "dev/initctl", typ: tar.TypeFifo, mode: 0o600},
		{name: "var/lib/sparse", mode: 0o600, data: sparse, uid: 1000, gid: 1000},
	})
	for _, c := range []struct {
		name string
		blob []byte
	}{{"gzip", gz(t, tarBytes)}, {"zstd", zst(t, tarBytes)}, {"tar", tarBytes}} {
		t.Run(c.name, func(t *testing.T) {
			root := filepath.Join(root, c.name)
			os.Mkdir(root, 0o755)
			var seen int64
			r, _ := Open(root)
			defer r.Close()
			st, err := r.Apply(context.Background(), bytes.NewReader(c.blob), Layer{Digest: digest(c.blob), DiffID: digest(tarBytes)},
				func(n int64) { seen = n })
			if err != nil {
				t.Fatal(err)
			}
			if seen != int64(len(c.blob)) || st.Read != int64(len(c.blob)) || st.Entries != 13 {
				t.Errorf("progress %d, stats %+v, blob %d bytes", seen, st, len(c.blob))
			}
			checkEveryType(t, root, capV, sparse)
		})
	}
}

func zst(t *testing.T, b []byte) []byte {
	var out bytes.Buffer
	z, _ := zstd.NewWriter(&out)
	z.Write(b)
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func checkEveryType(t *testing.T, root, capV string, sparse []byte) {
	p := func(s string) string { return filepath.Join(root, s) }
	if st := lstat(t, root); st.Mode != unix.S_IFDIR|0o711 || st.Uid != 3 || st.Mtim.Sec != mtime.Unix() {
		t.Errorf("root: mode %o uid %d mtime %d", st.Mode, st.Uid, st.Mtim.Sec)
	}
	if st := lstat(t, p("usr/bin")); st.Mode != unix.S_IFDIR|0o750 || st.Uid != 12 || st.Gid != 34 || st.Mtim.Sec != mtime.Unix() {
		t.Errorf("usr/bin: mode %o owner %d:%d mtime %d", st.Mode, st.Uid, st.Gid, st.Mtim.Sec)
	}
	if st := lstat(t, p("usr/bin/su")); st.Mode != unix.S_IFREG|0o4755 || st.Mtim.Sec != mtime.Unix() {
		t.Errorf("su: mode %o mtime %d", st.Mode, st.Mtim.Sec)
	}
	if st := lstat(t, p("usr/bin/sg")); st.Mode != unix.S_IFREG|0o2711 || st.Gid != 5 {
		t.Errorf("sg: mode %o gid %d", st.Mode, st.Gid)
	}
	if st := lstat(t, p("tmp")); st.Mode != unix.S_IFDIR|0o1777 {
		t.Errorf("tmp: mode %o", st.Mode)
	}
	for k, want := range map[string]string{"security.capability": capV, "user.note": "hi",
		"security.selinux": "system_u:object_r:ping_exec_t:s0"} {
		buf := make([]byte, 256)
		n, err := unix.Lgetxattr(p("usr/bin/ping"), k, buf)
		if err != nil || string(buf[:n]) != want {
			t.Errorf("ping xattr %s = %q, %v", k, buf[:max(n, 0)], err)
		}
	}
	ping, pong := lstat(t, p("usr/bin/ping")), lstat(t, p("usr/bin/pong"))
	if ping.Ino != pong.Ino || ping.Nlink != 2 {
		t.Errorf("pong is not a hard link of ping: %d %d nlink %d", ping.Ino, pong.Ino, ping.Nlink)
	}
	if l, err := os.Readlink(p("usr/bin/sh")); err != nil || l != "/usr/bin/ping" {
		t.Errorf("sh -> %q, %v", l, err)
	}
	if st := lstat(t, p("usr/bin/sh")); st.Uid != 7 || st.Gid != 8 || st.Mtim.Sec != mtime.Unix() {
		t.Errorf("sh: owner %d:%d mtime %d", st.Uid, st.Gid, st.Mtim.Sec)
	}
	if st := lstat(t, p("dev/null")); st.Mode != unix.S_IFCHR|0o666 || st.Rdev != unix.Mkdev(1, 3) {
		t.Errorf("dev/null: mode %o rdev %x", st.Mode, st.Rdev)
	}
	if st := lstat(t, p("dev/sda")); st.Mode != unix.S_IFBLK|0o660 || st.Rdev != unix.Mkdev(8, 0) || st.Gid != 6 {
		t.Errorf("dev/sda: mode %o rdev %x gid %d", st.Mode, st.Rdev, st.Gid)
	}
	if st := lstat(t, p("dev/initctl")); st.Mode != unix.S_IFIFO|0o600 {
		t.Errorf("initctl: mode %o", st.Mode)
	}
	got, _ := os.ReadFile(p("var/lib/sparse"))
	if !bytes.Equal(got, sparse) {
		t.Error("sparse file content differs")
	}
	if st := lstat(t, p("var/lib/sparse")); st.Blocks*512 > 1<<20 || st.Uid != 1000 {
		t.Errorf("sparse file: %d bytes allocated of %d (holes not kept), uid %d", st.Blocks*512, len(sparse), st.Uid)
	}
	// Parents the layer did not list are made 0755.
	if st := lstat(t, p("var/lib")); st.Mode != unix.S_IFDIR|0o755 {
		t.Errorf("var/lib: mode %o", st.Mode)
	}
}

func TestWhiteoutsAndOpaque(t *testing.T) {
	root := t.TempDir()
	mustApply(t, root, []entry{
		{name: "a/", typ: tar.TypeDir, mode: 0o755},
		{name: "a/x", data: []byte("x")},
		{name: "a/sub/y", data: []byte("y")},
		{name: "b/z", data: []byte("z")},
		{name: "b/keep", data: []byte("k")},
		{name: "c/deep/file", data: []byte("c")},
		{name: "a/keep/old", data: []byte("lower")},
		{name: "d", data: []byte("file that becomes a dir")},
		{name: "e/f", data: []byte("dir that becomes a file")},
		{name: "x/y/lower", data: []byte("lower")},
		{name: "x/lower", data: []byte("lower")},
	})
	mustApply(t, root, []entry{
		{name: "a/early", data: []byte("same layer, before the marker")},
		{name: "a/keep/new", data: []byte("same layer, its parent not listed")},
		{name: "a/.wh..wh..opq"},
		{name: "a/late", data: []byte("after")},
		{name: ".wh.c"},
		{name: "b/.wh.z"},
		{name: "b/.wh.missing"},
		{name: "nowhere/.wh.x"},
		{name: "d/", typ: tar.TypeDir, mode: 0o700},
		{name: "e", data: []byte("now a file")},
		{name: "x/y/.wh..wh..opq"},
		{name: "x/.wh..wh..opq"},
	})
	var got []string
	filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if p != root {
			rel, _ := filepath.Rel(root, p)
			if info.IsDir() {
				rel += "/"
			}
			got = append(got, rel)
		}
		return nil
	})
	want := "a/ a/early a/keep/ a/keep/new a/late b/ b/keep d/ e x/ x/y/"
	if strings.Join(got, " ") != want {
		t.Errorf("tree = %q, want %q", strings.Join(got, " "), want)
	}
}

func TestDigestMismatch(t *testing.T) {
	tb := makeTar(t, []entry{{name: "f", data: []byte("content")}})
	blob := gz(t, tb)
	other := digest([]byte("other"))
	_, err := apply(t, t.TempDir(), blob, Layer{Digest: other})
	var de *DigestError
	if !errors.As(err, &de) || de.What != "digest" || de.Want != other || de.Got != digest(blob) {
		t.Fatalf("wrong digest: %v", err)
	}
	_, err = apply(t, t.TempDir(), blob, Layer{DiffID: other})
	if !errors.As(err, &de) || de.What != "diffID" || de.Got != digest(tb) {
		t.Fatalf("wrong diffID: %v", err)
	}
	// An uncompressed layer, whose diffID is its digest (hashed once).
	if _, err = apply(t, t.TempDir(), tb, Layer{DiffID: other}); !errors.As(err, &de) || de.What != "diffID" || de.Got != digest(tb) {
		t.Fatalf("wrong diffID of an uncompressed layer: %v", err)
	}
	if _, err = apply(t, t.TempDir(), tb, Layer{DiffID: digest(tb)}); err != nil {
		t.Fatalf("uncompressed layer with its diffID: %v", err)
	}
	// Bytes after the tar's end are covered too.
	padded := append(append([]byte{}, tb...), make([]byte, 4096)...)
	if _, err := apply(t, t.TempDir(), padded, Layer{Digest: digest(tb)}); !errors.As(err, &de) {
		t.Fatalf("trailing bytes not hashed: %v", err)
	}
	if _, err := apply(t, t.TempDir(), blob, Layer{Digest: "sha256:abc"}); err == nil || !strings.Contains(err.Error(), "not a sha256 digest") {
		t.Fatalf("bad digest accepted: %v", err)
	}
}

func TestCancelled(t *testing.T) {
	blob := gz(t, makeTar(t, []entry{{name: "f", data: []byte("x")}}))
	r, _ := Open(t.TempDir())
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Apply(ctx, bytes.NewReader(blob), Layer{Digest: digest(blob)}, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

// TestEscapes: crafted entries that try to write outside the root either
// land inside it or are refused; nothing outside changes.
func TestEscapes(t *testing.T) {
	for _, c := range []struct {
		name    string
		es      []entry
		refused string   // part of the error, "" when the layer applies
		inside  []string // paths that must then exist inside the root
	}{
		{name: "dotdot", es: []entry{{name: "../x", data: []byte("out")}}, refused: `".." component`},
		{name: "dotdot-inner", es: []entry{{name: "a/../../x", data: []byte("out")}}, refused: `".." component`},
		{name: "absolute", es: []entry{{name: "/abs", data: []byte("in")}}, inside: []string{"abs"}},
		{name: "symlink-to-slash", es: []entry{
			{name: "evil", typ: tar.TypeSymlink, link: "/"},
			{name: "evil/pwned", data: []byte("in")}}, inside: []string{"pwned"}},
		{name: "symlink-up", es: []entry{
			{name: "up", typ: tar.TypeSymlink, link: "../../../../.."},
			{name: "up/pwned", data: []byte("in")},
			{name: "up/newdir/f", data: []byte("in")}}, inside: []string{"pwned", "newdir/f"}},
		{name: "symlink-chain", es: []entry{
			{name: "l1", typ: tar.TypeSymlink, link: "l2"},
			{name: "l2", typ: tar.TypeSymlink, link: "../.."},
			{name: "l1/x", data: []byte("in")}}, inside: []string{"x"}},
		{name: "symlink-outside-dir", es: []entry{
			{name: "o", typ: tar.TypeSymlink, link: "OUTSIDE"},
			{name: "o/f", data: []byte("in")}}, refused: "not a directory"},
		{name: "overwrite-symlink", es: []entry{
			{name: "l", typ: tar.TypeSymlink, link: "OUTSIDE/victim"},
			{name: "l", data: []byte("replaces the link")}}, inside: []string{"l"}},
		{name: "hardlink-abs", es: []entry{{name: "s", typ: tar.TypeLink, link: "/etc/shadow"}}, refused: "no such file"},
		{name: "hardlink-dotdot", es: []entry{{name: "s", typ: tar.TypeLink, link: "../OUTSIDE/victim"}}, refused: `".." component`},
		{name: "hardlink-through-symlink", es: []entry{
			{name: "e", typ: tar.TypeSymlink, link: "/etc"},
			{name: "s", typ: tar.TypeLink, link: "e/shadow"}}, refused: "no such file"},
		{name: "hardlink-through-up", es: []entry{
			{name: "up", typ: tar.TypeSymlink, link: "../.."},
			{name: "s", typ: tar.TypeLink, link: "up/OUTSIDE/victim"}}, refused: "no such file"},
		{name: "whiteout-through-symlink", es: []entry{
			{name: "up", typ: tar.TypeSymlink, link: "../OUTSIDE"},
			{name: "up/.wh.victim"}}},
		{name: "whiteout-parent", es: []entry{{name: ".wh..."}}, refused: `whiteout of ".."`},
		{name: "opaque-through-symlink", es: []entry{
			{name: "up", typ: tar.TypeSymlink, link: "../OUTSIDE"},
			{name: "up/.wh..wh..opq"}}, refused: "not a directory"},
		{name: "opaque-root", es: []entry{{name: ".wh..wh..opq"}}},
		{name: "root-not-dir", es: []entry{{name: ".", data: []byte("x")}}, refused: "root can only be a directory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			top := t.TempDir()
			outside := filepath.Join(top, "OUTSIDE")
			os.Mkdir(outside, 0o755)
			os.WriteFile(filepath.Join(outside, "victim"), []byte("victim"), 0o644)
			root := filepath.Join(top, "a", "b", "root")
			os.MkdirAll(root, 0o755)
			_, err := apply(t, root, makeTar(t, c.es), Layer{})
			if c.refused == "" && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if c.refused != "" && (err == nil || !strings.Contains(err.Error(), c.refused)) {
				t.Fatalf("got %v, want an error with %q", err, c.refused)
			}
			for _, p := range c.inside {
				if _, err := os.Lstat(filepath.Join(root, p)); err != nil {
					t.Errorf("%s not written inside the root: %v", p, err)
				}
			}
			// Outside the root: the victim, unchanged and not linked,
			// and nothing else anywhere above the root.
			var found []string
			filepath.Walk(top, func(p string, info os.FileInfo, err error) error {
				if strings.HasPrefix(p, root) {
					return filepath.SkipDir
				}
				found = append(found, strings.TrimPrefix(p, top))
				return nil
			})
			if strings.Join(found, " ") != " /OUTSIDE /OUTSIDE/victim /a /a/b" {
				t.Errorf("outside the root: %q", found)
			}
			if data, _ := os.ReadFile(filepath.Join(outside, "victim")); string(data) != "victim" {
				t.Errorf("victim now %q", data)
			}
			if st := lstat(t, filepath.Join(outside, "victim")); st.Nlink != 1 {
				t.Errorf("victim has %d links", st.Nlink)
			}
			if _, err := os.Lstat("/pwned"); err == nil {
				t.Error("/pwned exists")
			}
		})
	}
}

// TestCorruptStream: a blob that fails to decompress is reported as the
// digest mismatch it is, not as a gzip error.
func TestCorruptStream(t *testing.T) {
	blob := gz(t, makeTar(t, []entry{{name: "f", data: bytes.Repeat([]byte("data "), 1000)}}))
	good := digest(blob)
	bad := append([]byte{}, blob...)
	bad[len(bad)/2] ^= 0xff
	_, err := apply(t, t.TempDir(), bad, Layer{Digest: good})
	var de *DigestError
	if !errors.As(err, &de) || de.Want != good || de.Cause == nil {
		t.Fatalf("got %v", err)
	}
	// Cut short: the same.
	_, err = apply(t, t.TempDir(), blob[:len(blob)/2], Layer{Digest: good})
	if !errors.As(err, &de) {
		t.Fatalf("truncated: %v", err)
	}
}

// TestExpansionBounded: a sparse entry claiming far more bytes than the
// layer carries is refused instead of spinning over its zeros.
func TestExpansionBounded(t *testing.T) {
	// A GNU sparse header (old format, made by hand: Go cannot write
	// one) of an 8 GiB file whose only data is its last byte.
	var hdr [512]byte
	copy(hdr[0:], "huge")
	copy(hdr[100:], "0000644\x00")
	copy(hdr[108:], "0000000\x00")
	copy(hdr[116:], "0000000\x00")
	copy(hdr[124:], "00000000001\x00") // stored bytes: 1
	copy(hdr[136:], "00000000000\x00")
	hdr[156] = tar.TypeGNUSparse
	copy(hdr[257:], "ustar  \x00")
	copy(hdr[386:], "77777777776\x00") // sparse[0].offset
	copy(hdr[398:], "00000000001\x00") // sparse[0].numbytes
	copy(hdr[483:], "77777777777\x00") // realsize
	copy(hdr[148:], "        ")
	var cks int64
	for _, b := range hdr {
		cks += int64(b)
	}
	copy(hdr[148:], fmt.Sprintf("%06o\x00 ", cks))
	blob := append(hdr[:], make([]byte, 512+1024)...)
	blob[512] = 'x'
	r, _ := Open(t.TempDir())
	defer r.Close()
	r.MaxExpansion = 8 << 20
	start := time.Now()
	_, err := r.Apply(context.Background(), bytes.NewReader(blob), Layer{Digest: digest(blob)}, nil)
	if err == nil || !strings.Contains(err.Error(), "expand to more than") {
		t.Fatalf("got %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("took %v", time.Since(start))
	}
}
