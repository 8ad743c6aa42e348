package manifest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// likeTrees makes an old tree and a new one that shares most of it: one
// file kept, one changed at the same size, one changed in size, one added,
// one file in a directory, and a large file (several read buffers) changed
// only in its last byte.
func likeTrees(t *testing.T) (old, cur string) {
	old, cur = tempDir(t), tempDir(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 40000) // 640,000 bytes
	for _, root := range []string{old, cur} {
		must(t, os.Mkdir(filepath.Join(root, "dir"), 0o755))
		must(t, os.WriteFile(filepath.Join(root, "kept"), []byte("same\n"), 0o644))
		must(t, os.WriteFile(filepath.Join(root, "dir", "kept"), []byte("also same\n"), 0o600))
		must(t, os.WriteFile(filepath.Join(root, "big"), big, 0o644))
	}
	must(t, os.WriteFile(filepath.Join(old, "changed"), []byte("old\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(cur, "changed"), []byte("new\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(old, "grown"), []byte("a\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(cur, "grown"), []byte("abc\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(cur, "added"), []byte("added\n"), 0o644))
	bigChanged := bytes.Clone(big)
	bigChanged[len(big)-1] = 'X'
	must(t, os.WriteFile(filepath.Join(cur, "bigchanged"), bigChanged, 0o644))
	must(t, os.WriteFile(filepath.Join(old, "bigchanged"), big, 0o644))
	return old, cur
}

func buildLike(t *testing.T, root string, like *Like) *Manifest {
	t.Helper()
	m, err := Build(context.Background(), root, BuildOptions{Like: like})
	must(t, err)
	return m
}

// A file equal to its counterpart takes the counterpart's recorded hash
// without being hashed; every other file is hashed. The manifest of the
// old tree is doctored so that a taken hash shows.
func TestBuildLikeTakesTheHashOfEqualFiles(t *testing.T) {
	old, cur := likeTrees(t)
	want := build(t, cur)
	om := build(t, old)
	marked := [32]byte{0xaa, 0xbb}
	oidx := om.Index()
	for _, p := range []string{"kept", "dir/kept", "big", "changed", "grown", "bigchanged"} {
		oidx[p].SHA256 = marked
	}
	got := buildLike(t, cur, &Like{Root: old, Manifest: om})
	gidx, widx := got.Index(), want.Index()
	for _, p := range []string{"kept", "dir/kept", "big"} {
		if gidx[p].SHA256 != marked {
			t.Errorf("%s: equal to the old tree's file, yet hashed, not taken from its manifest", p)
		}
		gidx[p].SHA256 = widx[p].SHA256
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("with Like, but for the taken hashes:\n%+v\nwant\n%+v", got.Entries, want.Entries)
	}
}

// With an unhashed manifest of the old tree, the new tree's manifest is
// exactly a plain build's, and the old tree's entries of equal files get
// the same hashes; the others stay unhashed.
func TestBuildLikeFillsAnUnhashedManifest(t *testing.T) {
	old, cur := likeTrees(t)
	want := build(t, cur)
	om, err := Build(context.Background(), old, BuildOptions{NoHash: true})
	must(t, err)
	for _, e := range om.Entries {
		if e.SHA256 != ([32]byte{}) {
			t.Fatalf("NoHash hashed %s", e.Path)
		}
	}
	got := buildLike(t, cur, &Like{Root: old, Manifest: om})
	if !reflect.DeepEqual(got, want) {
		t.Errorf("with Like:\n%+v\nwant\n%+v", got.Entries, want.Entries)
	}
	oidx, widx := om.Index(), want.Index()
	for _, p := range []string{"kept", "dir/kept", "big"} {
		if oidx[p].SHA256 != widx[p].SHA256 {
			t.Errorf("%s: the old tree's entry was not given the hash of the equal file", p)
		}
	}
	for _, p := range []string{"changed", "grown", "bigchanged"} {
		if oidx[p].SHA256 != ([32]byte{}) {
			t.Errorf("%s: the old tree's entry got a hash, yet the files differ", p)
		}
	}
	if err := Encode(&bytes.Buffer{}, om); err == nil {
		t.Errorf("a manifest built with NoHash was encoded")
	}
}

// The old tree is read without following a symlink: a manifest that
// claims a file where the tree has a symlink to a directory holding an
// equal file does not lend its hash.
func TestBuildLikeDoesNotFollowSymlinks(t *testing.T) {
	old, cur, outside := tempDir(t), tempDir(t), tempDir(t)
	must(t, os.Mkdir(filepath.Join(cur, "d"), 0o755))
	must(t, os.WriteFile(filepath.Join(cur, "d", "f"), []byte("x\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(outside, "f"), []byte("x\n"), 0o644))
	must(t, os.Symlink(outside, filepath.Join(old, "d")))
	must(t, os.Symlink(filepath.Join(outside, "f"), filepath.Join(old, "f")))
	must(t, os.WriteFile(filepath.Join(cur, "f"), []byte("x\n"), 0o644))
	marked := [32]byte{0xaa}
	om := &Manifest{Entries: []Entry{
		{Path: ".", Type: Dir},
		{Path: "d", Type: Dir},
		{Path: "d/f", Type: File, Size: 2, SHA256: marked},
		{Path: "f", Type: File, Size: 2, SHA256: marked},
	}}
	got := buildLike(t, cur, &Like{Root: old, Manifest: om})
	if !reflect.DeepEqual(got, build(t, cur)) {
		t.Errorf("a hash came through a symlink of the old tree: %+v", got.Entries)
	}
}
