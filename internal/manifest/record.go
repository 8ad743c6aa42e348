package manifest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/imgbase/imgbase/internal/atomicfile"
)

// RecordDir and RecordPath are where a base keeps the manifest of its own
// tree, relative to its root. The record lives in the filesystem it
// describes: it is written before the base is sealed read-only, is removed
// with the base (and with a half-built one by recovery), and is there
// whenever the base is mounted to be verified. It is left out of the
// manifest itself (see Exclude) and out of a tree sync.
const (
	RecordDir  = ".imgbase"
	RecordPath = RecordDir + "/manifest"
)

// Save writes m to path atomically, creating its directory.
func Save(path string, m *Manifest) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("cannot record manifest: %w", err)
	}
	var buf bytes.Buffer
	if err := Encode(&buf, m); err != nil {
		return err
	}
	return atomicfile.Write(path, buf.Bytes(), 0o644)
}

// Load reads and validates the manifest at path.
func Load(path string) (*Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read manifest: %w", err)
	}
	defer f.Close()
	m, err := Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Record describes the tree at root and saves the manifest as the tree's
// own record: what an image build runs last, so that a base written from
// the image can be verified and a base made from it by delta reads only
// the files that changed. The record's directory is made first: making it
// changes the root's mtime, which the record is to hold as the image has it.
func Record(ctx context.Context, root string) (*Manifest, error) {
	if err := os.MkdirAll(filepath.Join(root, RecordDir), 0o755); err != nil {
		return nil, fmt.Errorf("cannot record manifest: %w", err)
	}
	m, err := Build(ctx, root, BuildOptions{Exclude: []string{RecordDir}})
	if err != nil {
		return nil, err
	}
	return m, Save(filepath.Join(root, RecordPath), m)
}

// CheckRecord compares the tree at root with the record it carries,
// reading every file, and returns the record's entry count and every
// difference of the tree from it.
func CheckRecord(ctx context.Context, root string) (int, []Difference, error) {
	want, err := Load(filepath.Join(root, RecordPath))
	if err != nil {
		return 0, nil, err
	}
	got, err := Build(ctx, root, BuildOptions{Exclude: []string{RecordDir}})
	if err != nil {
		return 0, nil, err
	}
	return len(want.Entries), Compare(want, got, CompareOptions{}), nil
}
