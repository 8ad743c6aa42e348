package blobcache

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func dg(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func open(t *testing.T, max int64) (*Cache, string) {
	dir := filepath.Join(t.TempDir(), "blobs")
	c, err := Open(dir, max, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return c, dir
}

func TestRoundTrip(t *testing.T) {
	c, _ := open(t, 1<<20)
	data := []byte("layer bytes")
	if c.Has(dg(data)) {
		t.Fatal("empty cache has a blob")
	}
	if _, err := c.Open(dg(data)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("miss: %v", err)
	}
	w, _ := c.Create(dg(data))
	w.Write(data[:3])
	w.Write(data[3:])
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	f, err := c.Open(dg(data))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if !bytes.Equal(got, data) {
		t.Errorf("got %q", got)
	}
}

func TestOnlyVerifiedBlobsEnter(t *testing.T) {
	c, dir := open(t, 1<<20)
	want := dg([]byte("good"))
	err := c.Put(want, bytes.NewReader([]byte("evil")))
	var m *DigestMismatchError
	if !errors.As(err, &m) || m.Got != dg([]byte("evil")) {
		t.Fatalf("mismatch accepted: %v", err)
	}
	// A cut download: written in part, aborted.
	w, _ := c.Create(want)
	w.Write([]byte("go"))
	w.Abort()
	if c.Has(want) {
		t.Error("a bad blob is cached")
	}
	for _, sub := range []string{"sha256", "tmp"} {
		if es, _ := os.ReadDir(filepath.Join(dir, sub)); len(es) != 0 {
			t.Errorf("%s holds %d files", sub, len(es))
		}
	}
	if _, err := c.Create("sha256:../../etc/passwd"); err == nil {
		t.Error("a path accepted as digest")
	}
	if _, err := c.Create("sha256:" + hex.EncodeToString(make([]byte, 32))[:63] + "G"); err == nil {
		t.Error("non-hex digest accepted")
	}
}

func TestEvictsLeastRecentlyUsed(t *testing.T) {
	c, _ := open(t, 250)
	clock := time.Unix(1_000_000, 0)
	c.now = func() time.Time { clock = clock.Add(time.Minute); return clock }
	blobs := [][]byte{bytes.Repeat([]byte("a"), 100), bytes.Repeat([]byte("b"), 100), bytes.Repeat([]byte("c"), 100)}
	for i, b := range blobs[:2] {
		if err := c.Put(dg(b), bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
		// Writes get real times; make the order explicit.
		h, _ := hexOf(dg(b))
		tm := time.Unix(int64(1000+i), 0)
		os.Chtimes(c.path(h), tm, tm)
	}
	f, _ := c.Open(dg(blobs[0])) // a is now the most recently used
	f.Close()
	if err := c.Put(dg(blobs[2]), bytes.NewReader(blobs[2])); err != nil {
		t.Fatal(err)
	}
	if !c.Has(dg(blobs[0])) || c.Has(dg(blobs[1])) || !c.Has(dg(blobs[2])) {
		t.Errorf("after eviction: a %v b %v c %v, want a and c", c.Has(dg(blobs[0])), c.Has(dg(blobs[1])), c.Has(dg(blobs[2])))
	}
	if n, _ := c.Size(); n != 200 {
		t.Errorf("size %d", n)
	}
}

func TestClean(t *testing.T) {
	c, dir := open(t, 1<<20)
	a, b := []byte("keep me"), []byte("drop me")
	c.Put(dg(a), bytes.NewReader(a))
	c.Put(dg(b), bytes.NewReader(b))
	os.WriteFile(filepath.Join(dir, "tmp", "blob-leftover"), []byte("x"), 0o600)
	n, freed, err := c.Clean(map[string]bool{dg(a): true})
	if err != nil || n != 1 || freed != int64(len(b)) {
		t.Fatalf("Clean = %d, %d, %v", n, freed, err)
	}
	if !c.Has(dg(a)) || c.Has(dg(b)) {
		t.Error("wrong blob removed")
	}
	if es, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(es) != 0 {
		t.Error("leftover kept")
	}
}

func TestWriteErrorSurfacesAtCommit(t *testing.T) {
	c, dir := open(t, 1<<20)
	data := []byte("data")
	w, _ := c.Create(dg(data))
	w.f.Close() // the disk "fails": writes to a closed file error
	if n, err := w.Write(data); n != len(data) || err != nil {
		t.Fatalf("Write = %d, %v: a cache error must not fail the pull it is teed from", n, err)
	}
	if err := w.Commit(); err == nil {
		t.Fatal("commit after a failed write succeeded")
	}
	if c.Has(dg(data)) {
		t.Error("cached")
	}
	if es, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(es) != 0 {
		t.Error("temp file left")
	}
}
