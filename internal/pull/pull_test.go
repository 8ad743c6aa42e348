package pull

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"

	"github.com/imgbase/imgbase/internal/blobcache"
	"github.com/imgbase/imgbase/internal/imageref"
	"github.com/imgbase/imgbase/internal/ocilayer"
	"github.com/imgbase/imgbase/internal/registry"
)

// The test trees: v1, and v2 = v1 with a changed file, a removed file
// (whiteout), a directory replaced wholesale (opaque) and new files.
func buildV1(t *testing.T, d string) {
	mk(t, d, "etc/os-release", "VERSION=1\n", 0o644)
	mk(t, d, "etc/motd", "hello\n", 0o644)
	mk(t, d, "usr/bin/tool", "#!/bin/sh\n", 0o4755)
	mk(t, d, "usr/lib/plugins/a.so", "a", 0o644)
	mk(t, d, "usr/lib/plugins/b.so", "b", 0o644)
	mk(t, d, "usr/share/big", string(make([]byte, 1<<20))+"tail", 0o644)
	os.Symlink("../lib/plugins/a.so", filepath.Join(d, "usr/bin/a-link"))
	os.Link(filepath.Join(d, "usr/bin/tool"), filepath.Join(d, "usr/bin/tool-hard"))
	os.Chown(filepath.Join(d, "etc/motd"), 100, 200)
	unix.Lsetxattr(filepath.Join(d, "usr/bin/tool"), "user.origin", []byte("v1"), 0)
	mk(t, d, "usr/share/imgbase/build/meta/nvr", "Base-1-0\n", 0o644)
}

func buildV2(t *testing.T, d string) {
	buildV1(t, d)
	mk(t, d, "etc/os-release", "VERSION=2\n", 0o644)
	os.Remove(filepath.Join(d, "etc/motd"))
	os.RemoveAll(filepath.Join(d, "usr/lib/plugins"))
	mk(t, d, "usr/lib/plugins/c.so", "c", 0o644)
	mk(t, d, "usr/share/imgbase/build/meta/nvr", "Base-2-0\n", 0o644)
}

// layerV2 is what changed from v1 to v2, as a build tool writes it.
func layerV2(t *testing.T, v2 string) []byte {
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	add(t, w, v2, "etc/os-release")
	w.WriteHeader(&tar.Header{Name: "etc/.wh.motd", Typeflag: tar.TypeReg})
	add(t, w, v2, "usr/lib/plugins")
	w.WriteHeader(&tar.Header{Name: "usr/lib/plugins/.wh..wh..opq", Typeflag: tar.TypeReg})
	add(t, w, v2, "usr/lib/plugins/c.so")
	add(t, w, v2, "usr/share/imgbase/build/meta/nvr")
	w.Close()
	return b.Bytes()
}

func mk(t *testing.T, root, p, content string, mode uint32) {
	full := filepath.Join(root, p)
	os.MkdirAll(filepath.Dir(full), 0o755)
	if err := os.WriteFile(full, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	unix.Chmod(full, mode)
}

// add writes one entry of dir's tree, with owner, mode, xattrs.
func add(t *testing.T, w *tar.Writer, dir, rel string) {
	full := filepath.Join(dir, rel)
	fi, err := os.Lstat(full)
	if err != nil {
		t.Fatal(err)
	}
	link, _ := os.Readlink(full)
	h, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		t.Fatal(err)
	}
	h.Name, h.Uname, h.Gname, h.Format = rel, "", "", tar.FormatPAX
	if fi.IsDir() {
		h.Name += "/"
	}
	if xs := xattrs(full); len(xs) > 0 {
		h.PAXRecords = map[string]string{}
		for k, v := range xs {
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
	}
	if err := w.WriteHeader(h); err != nil {
		t.Fatal(err)
	}
	if fi.Mode().IsRegular() {
		f, _ := os.Open(full)
		io.Copy(w, f)
		f.Close()
	}
}

// tarTree writes dir whole, hard links as links.
func tarTree(t *testing.T, dir string) []byte {
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	seen := map[uint64]string{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if p == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().IsRegular() && st.Nlink > 1 {
			if first, ok := seen[st.Ino]; ok {
				w.WriteHeader(&tar.Header{Name: rel, Typeflag: tar.TypeLink, Linkname: first})
				return nil
			}
			seen[st.Ino] = rel
		}
		add(t, w, dir, rel)
		return nil
	})
	w.Close()
	return b.Bytes()
}

func xattrs(p string) map[string]string {
	buf := make([]byte, 4096)
	n, _ := unix.Llistxattr(p, buf)
	m := map[string]string{}
	for _, k := range strings.Split(string(buf[:max(n, 0)]), "\x00") {
		if k == "" {
			continue
		}
		v := make([]byte, 4096)
		vn, _ := unix.Lgetxattr(p, k, v)
		m[k] = string(v[:max(vn, 0)])
	}
	return m
}

// snapshot describes a tree entry by entry: type, mode, owner, content
// hash, link target, xattrs, hard-link group.
func snapshot(t *testing.T, dir string) string {
	var lines []string
	inodes := map[uint64]string{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		st := fi.Sys().(*syscall.Stat_t)
		s := fmt.Sprintf("%s %o %d:%d", rel, st.Mode, st.Uid, st.Gid)
		switch {
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			s += fmt.Sprintf(" %x", sha256.Sum256(b))
			if first, ok := inodes[st.Ino]; ok {
				s += " =" + first
			} else {
				inodes[st.Ino] = rel
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			s += " -> " + l
		}
		if xs := xattrs(p); len(xs) > 0 {
			s += fmt.Sprint(" ", xs)
		}
		if rel != "." {
			lines = append(lines, s)
		}
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func gzLayer(t *testing.T, data []byte) v1.Layer {
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

type fixture struct {
	host         string
	v1, v2       string // source trees
	served       atomic.Int64
	cutLayer     string // a blob digest whose download is cut halfway
	tamperLayer  string // a blob digest served with one byte flipped
	layerA, layB v1.Layer
}

func newFixture(t *testing.T) *fixture {
	return newFixtureOn(t, ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
}

// newFixtureOn serves the test images from reg, through a handler that
// counts blob bytes and can cut a download.
func newFixtureOn(t *testing.T, reg http.Handler) *fixture {
	if os.Geteuid() != 0 {
		t.Skip("needs root: owners")
	}
	f := &fixture{}
	base, err := os.MkdirTemp("/var/tmp", "pull-test-") // user xattrs: not tmpfs
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	f.v1, f.v2 = filepath.Join(base, "v1"), filepath.Join(base, "v2")
	buildV1(t, f.v1)
	buildV2(t, f.v2)
	f.layerA = gzLayer(t, tarTree(t, f.v1))
	f.layB = gzLayer(t, layerV2(t, f.v2))

	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			rec := httptest.NewRecorder()
			reg.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			if f.cutLayer != "" && strings.HasSuffix(r.URL.Path, f.cutLayer) {
				// Promise the whole blob, send half, hang up.
				w.Header().Set("Content-Length", fmt.Sprint(len(body)))
				w.WriteHeader(http.StatusOK)
				w.Write(body[:len(body)/2])
				f.served.Add(int64(len(body) / 2))
				panic(http.ErrAbortHandler)
			}
			if f.tamperLayer != "" && strings.HasSuffix(r.URL.Path, f.tamperLayer) {
				body = bytes.Clone(body)
				body[len(body)/2] ^= 1
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(body)
			f.served.Add(int64(len(body)))
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	f.host = strings.TrimPrefix(s.URL, "http://")
	f.push(t, "os/base:1.0", f.layerA)
	f.push(t, "os/base:2.0", f.layerA, f.layB)
	return f
}

func (f *fixture) push(t *testing.T, tag string, layers ...v1.Layer) {
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layers...)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(f.host+"/"+tag, name.Insecure)
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) resolve(t *testing.T, tag string) *registry.Image {
	ref, err := imageref.Parse("docker://" + f.host + "/os/base:" + tag)
	if err != nil {
		t.Fatal(err)
	}
	img, err := registry.New(registry.Options{Insecure: []string{f.host}, Arch: "amd64"}).Resolve(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func size(l v1.Layer) int64 { n, _ := l.Size(); return n }

func TestPullV1ThenV2ReusesCache(t *testing.T) {
	testPullV1ThenV2(t, newFixture(t))
}

func testPullV1ThenV2(t *testing.T, f *fixture) {
	cache, err := blobcache.Open(filepath.Join(t.TempDir(), "blobs"), 1<<30, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()

	root1 := filepath.Join(out, "1")
	os.Mkdir(root1, 0o755)
	var last Progress
	res, err := Extract(context.Background(), f.resolve(t, "1.0"), root1, Options{Cache: cache, Progress: func(p Progress) { last = p }})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := snapshot(t, root1), snapshot(t, f.v1); got != want {
		t.Errorf("v1 tree differs from its source:\n%s\n--- want\n%s", got, want)
	}
	if res.Downloaded != size(f.layerA) || res.FromCache != 0 || last.Done != last.Total || last.Total != size(f.layerA) {
		t.Errorf("v1: %+v, last progress %+v", res, last)
	}

	f.served.Store(0)
	root2 := filepath.Join(out, "2")
	os.Mkdir(root2, 0o755)
	res, err = Extract(context.Background(), f.resolve(t, "2.0"), root2, Options{Cache: cache, Progress: func(p Progress) { last = p }})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := snapshot(t, root2), snapshot(t, f.v2); got != want {
		t.Errorf("v2 tree differs from its source:\n%s\n--- want\n%s", got, want)
	}
	// Only the changed layer crossed the wire (plus the small config).
	if res.Downloaded != size(f.layB) || res.FromCache != size(f.layerA) ||
		f.served.Load() < size(f.layB) || f.served.Load() > size(f.layB)+4096 {
		t.Errorf("v2: %+v, served %d bytes, layer B is %d", res, f.served.Load(), size(f.layB))
	}
	if last.Layers != 2 || last.Done != last.Total {
		t.Errorf("last progress %+v", last)
	}
	n, _ := NVR(f.resolve(t, "2.0"), root2)
	if n.String() != "Base-2-0" {
		t.Errorf("NVR from the tree: %v", n)
	}
}

func TestCutDownloadCachesNothing(t *testing.T) {
	testCutDownload(t, newFixture(t))
}

func testCutDownload(t *testing.T, f *fixture) {
	cache, _ := blobcache.Open(filepath.Join(t.TempDir(), "blobs"), 1<<30, nil)
	dB, _ := f.layB.Digest()
	dA, _ := f.layerA.Digest()
	f.cutLayer = dB.String()
	_, err := Extract(context.Background(), f.resolve(t, "2.0"), t.TempDir(), Options{Cache: cache})
	if err == nil || !strings.Contains(err.Error(), "layer 2 of 2") {
		t.Fatalf("cut download: %v", err)
	}
	if cache.Has(dB.String()) || !cache.Has(dA.String()) {
		t.Errorf("cache: A %v B %v, want A only", cache.Has(dA.String()), cache.Has(dB.String()))
	}
}

// The cache does not hash a downloaded layer itself (the apply does, as
// it reads it): a tampered download must still never become an entry.
func TestTamperedDownloadCachesNothing(t *testing.T) {
	f := newFixture(t)
	dir := filepath.Join(t.TempDir(), "blobs")
	cache, _ := blobcache.Open(dir, 1<<30, nil)
	dB, _ := f.layB.Digest()
	dA, _ := f.layerA.Digest()
	f.tamperLayer = dB.String()
	_, err := Extract(context.Background(), f.resolve(t, "2.0"), t.TempDir(), Options{Cache: cache})
	var de *ocilayer.DigestError
	if !errors.As(err, &de) {
		t.Fatalf("tampered layer: %v, want a digest error", err)
	}
	if cache.Has(dB.String()) || !cache.Has(dA.String()) {
		t.Errorf("cache: A %v B %v, want A only", cache.Has(dA.String()), cache.Has(dB.String()))
	}
	if n, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(n) != 0 {
		t.Errorf("the tampered blob's temporary file was left: %v", n)
	}
}

func TestDamagedCacheEntryIsDownloadedAgain(t *testing.T) {
	f := newFixture(t)
	dir := filepath.Join(t.TempDir(), "blobs")
	cache, _ := blobcache.Open(dir, 1<<30, nil)
	if _, err := Extract(context.Background(), f.resolve(t, "1.0"), t.TempDir(), Options{Cache: cache}); err != nil {
		t.Fatal(err)
	}
	dA, _ := f.layerA.Digest()
	p := filepath.Join(dir, "sha256", strings.TrimPrefix(dA.String(), "sha256:"))
	b, _ := os.ReadFile(p)
	b[len(b)/2] ^= 1
	os.WriteFile(p, b, 0o600)
	root := t.TempDir()
	res, err := Extract(context.Background(), f.resolve(t, "1.0"), root, Options{Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	if res.Downloaded != size(f.layerA) || snapshot(t, root) != snapshot(t, f.v1) {
		t.Errorf("%+v", res)
	}
	if got, _ := os.ReadFile(p); bytes.Equal(got, b) {
		t.Error("damaged entry kept")
	}
}

func TestNVR(t *testing.T) {
	img := &registry.Image{Ref: imageref.Ref{Transport: imageref.Docker, Name: "r/x", Tag: "t"}, Config: &v1.ConfigFile{}}
	root := t.TempDir()
	if _, err := NVR(img, root); err == nil || !strings.Contains(err.Error(), "no label imgbase.nvr and no /usr/share/imgbase/build/meta/nvr; set one") {
		t.Errorf("none: %v", err)
	}
	// A symlink out of the tree is not followed to a host file.
	os.MkdirAll(filepath.Join(root, "usr/share/imgbase/build/meta"), 0o755)
	os.Symlink("/etc/hostname", filepath.Join(root, TreeNVRPath))
	if n, err := NVR(img, root); err == nil {
		t.Errorf("symlink out of the tree read: %v", n)
	}
	os.Remove(filepath.Join(root, TreeNVRPath))
	os.WriteFile(filepath.Join(root, TreeNVRPath), []byte("Tree-1-0\n"), 0o644)
	if n, err := NVR(img, root); err != nil || n.String() != "Tree-1-0" {
		t.Errorf("tree: %v %v", n, err)
	}
	img.Config.Config.Labels = map[string]string{LabelNVR: "Label-2-0"}
	if n, err := NVR(img, root); err != nil || n.String() != "Label-2-0" {
		t.Errorf("label wins: %v %v", n, err)
	}
	img.Config.Config.Labels[LabelNVR] = "bad+name"
	if _, err := NVR(img, ""); err == nil || !strings.Contains(err.Error(), "label imgbase.nvr") {
		t.Errorf("bad label: %v", err)
	}
}

// endless is a source that never ends until closed, as an HTTP body
// whose connection is closed.
type endless struct{ closed atomic.Bool }

func (e *endless) Read(b []byte) (int, error) {
	if e.closed.Load() {
		return 0, errors.New("read on closed body")
	}
	for i := range b {
		b[i] = byte(i)
	}
	return len(b), nil
}

func (e *endless) Close() error { e.closed.Store(true); return nil }

// A prefetcher read partway and closed (a layer that failed to apply)
// ends its reader, though every chunk was queued or held.
func TestPrefetchCloseMidway(t *testing.T) {
	for _, read := range []int{0, 1, 3 << 20, 20 << 20} {
		src := &endless{}
		p := prefetch(context.Background(), src)
		if _, err := io.CopyN(io.Discard, p, int64(read)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // let the reader fill the queue
		done := make(chan error)
		go func() { done <- p.Close() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("Close after reading %d bytes did not return", read)
		}
	}
}

// The bytes come out whole and in order across the reused chunks.
func TestPrefetchReusesChunksInOrder(t *testing.T) {
	data := make([]byte, 20<<20+12345)
	for i := range data {
		data[i] = byte(i * 7 / 5)
	}
	p := prefetch(context.Background(), io.NopCloser(bytes.NewReader(data)))
	got, err := io.ReadAll(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("prefetched bytes differ from the source's")
	}
	p.Close()
}
