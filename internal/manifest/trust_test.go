package manifest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func walkNoHash(t *testing.T, root string) *Manifest {
	t.Helper()
	m, err := Build(context.Background(), root, BuildOptions{NoHash: true, Exclude: []string{RecordDir}})
	must(t, err)
	return m
}

// A tree's record, made by Record, lends its hashes to a walk that read no
// file: the result is the manifest a full build gives, and it can be saved.
// The hashes are the record's own (a doctored one shows).
func TestHashesFromARecordThatDescribesTheTree(t *testing.T) {
	_, root := likeTrees(t)
	must(t, os.Link(filepath.Join(root, "kept"), filepath.Join(root, "dir", "hardlink")))
	must(t, os.Symlink("../kept", filepath.Join(root, "dir", "link")))
	rec, err := Record(context.Background(), root)
	must(t, err)
	loaded, err := Load(filepath.Join(root, RecordPath))
	must(t, err)
	full, err := Build(context.Background(), root, BuildOptions{Exclude: []string{RecordDir}})
	must(t, err)
	if d := Compare(full, rec, CompareOptions{Times: true}); d != nil {
		t.Fatalf("the record differs from a build of the tree after it was saved (its directory changed the root?): %v", d)
	}
	// mkfs.ext4 -d adds lost+found to the tree it was given, and stamps
	// the root with the time it did.
	must(t, os.Mkdir(filepath.Join(root, LostFound), 0o700))
	later := time.Now().Add(time.Hour)
	must(t, os.Chtimes(root, later, later))
	marked := [32]byte{0xaa}
	loaded.Index()["big"].SHA256 = marked
	got, diff := HashesFrom(walkNoHash(t, root), loaded)
	if diff != nil {
		t.Fatalf("HashesFrom refused the tree's own record: %v", diff)
	}
	if got.Index()["big"].SHA256 != marked {
		t.Error("the hash of big was not taken from the record")
	}
	loaded.Index()["big"].SHA256 = full.Index()["big"].SHA256
	got, _ = HashesFrom(walkNoHash(t, root), loaded)
	got, _ = HashesFrom(walkNoHash(t, root), loaded)
	full, err = Build(context.Background(), root, BuildOptions{Exclude: []string{RecordDir}})
	must(t, err)
	if d := Compare(full, got, CompareOptions{Times: true}); d != nil {
		t.Errorf("the walk with the record's hashes differs from a full build: %v", d)
	}
	if err := Save(filepath.Join(t.TempDir(), "m"), got); err != nil {
		t.Errorf("the walk with the record's hashes cannot be saved: %v", err)
	}
}

// A record that a walk contradicts lends nothing: each way a tree can
// change after its record was made without a file being read is caught.
func TestHashesFromAStaleRecord(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(root string) error
		kind   Kind
	}{
		{"mode", func(r string) error { return os.Chmod(filepath.Join(r, "kept"), 0o600) }, ModeDiff},
		{"size", func(r string) error { return os.WriteFile(filepath.Join(r, "kept"), []byte("longer\n"), 0o644) }, Content},
		{"added", func(r string) error { return os.WriteFile(filepath.Join(r, "new"), nil, 0o644) }, Extra},
		{"removed", func(r string) error { return os.Remove(filepath.Join(r, "dir", "kept")) }, Missing},
		{"type", func(r string) error {
			os.Remove(filepath.Join(r, "kept"))
			return os.Symlink("big", filepath.Join(r, "kept"))
		}, TypeDiff},
		{"edited in place", func(r string) error {
			// Same size, one second on: what an editor or sed -i leaves.
			p := filepath.Join(r, "changed")
			st, err := os.Stat(p)
			if err != nil {
				return err
			}
			if err := os.WriteFile(p, []byte("NEW\n"), 0o644); err != nil {
				return err
			}
			return os.Chtimes(p, st.ModTime().Add(time.Second), st.ModTime().Add(time.Second))
		}, TimeDiff},
		{"lost+found below the root", func(r string) error { return os.Mkdir(filepath.Join(r, "dir", LostFound), 0o700) }, Extra},
		{"hard link", func(r string) error { return os.Link(filepath.Join(r, "big"), filepath.Join(r, "dir", "big")) }, Extra},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, root := likeTrees(t)
			rec, err := Record(context.Background(), root)
			must(t, err)
			must(t, c.change(root))
			got, diff := HashesFrom(walkNoHash(t, root), rec)
			if got != nil || len(diff) == 0 {
				t.Fatalf("a record made before a %s change lent its hashes", c.name)
			}
			found := false
			for _, d := range diff {
				found = found || d.Kind == c.kind
			}
			if !found {
				t.Errorf("differences %v, want one of kind %s", diff, c.kind)
			}
		})
	}
}

// An unhashed manifest is no record.
func TestHashesFromNeedsHashes(t *testing.T) {
	_, root := likeTrees(t)
	w := walkNoHash(t, root)
	if got, diff := HashesFrom(w, w); got != nil || len(diff) == 0 {
		t.Error("an unhashed manifest lent hashes")
	}
}
