package manifest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// BenchmarkBuildSmallFiles describes 10,000 files of 1-4 KiB in 100 directories.
func BenchmarkBuildSmallFiles(b *testing.B) {
	root := tempDir(b)
	for d := 0; d < 100; d++ {
		dir := filepath.Join(root, fmt.Sprintf("d%03d", d))
		must(b, os.Mkdir(dir, 0o755))
		for f := 0; f < 100; f++ {
			must(b, os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d", f)), make([]byte, 1024*(1+f%4)), 0o644))
		}
	}
	for _, workers := range []int{1, 2, DefaultWorkers} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := Build(context.Background(), root, BuildOptions{Workers: workers}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBuildLargeFile hashes one 200 MiB file (page cache warm);
// BenchmarkBuildLikeLargeFile compares it with an equal file instead, as a
// delta does with a file its predecessor holds.
func BenchmarkBuildLargeFile(b *testing.B) {
	root := largeFile(b)
	b.SetBytes(200 << 20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Build(context.Background(), root, BuildOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuildLikeLargeFile(b *testing.B) {
	root, old := largeFile(b), largeFile(b)
	like := &Like{Root: old}
	var err error
	if like.Manifest, err = Build(context.Background(), old, BuildOptions{}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(200 << 20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Build(context.Background(), root, BuildOptions{Like: like}); err != nil {
			b.Fatal(err)
		}
	}
}

// largeFile makes a tree holding one 200 MiB file, "big".
func largeFile(b *testing.B) string {
	root := tempDir(b)
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	f, err := os.Create(filepath.Join(root, "big"))
	must(b, err)
	for i := 0; i < 200; i++ {
		_, err := f.Write(buf)
		must(b, err)
	}
	must(b, f.Close())
	return root
}

// A record of 12,430 entries, the v2 test image's size, loads in 2.5 s in
// a TCG guest; the decode is on every delta's path, twice.
func BenchmarkDecode(b *testing.B) {
	m := &Manifest{Entries: []Entry{{Path: ".", Type: Dir, Mode: 0o755}, {Path: "usr", Type: Dir, Mode: 0o755}, {Path: "usr/share", Type: Dir, Mode: 0o755}}}
	for d := range 500 {
		dir := fmt.Sprintf("usr/share/d%03d", d)
		m.Entries = append(m.Entries, Entry{Path: dir, Type: Dir, Mode: 0o755, Sec: 1796187985, Nsec: 751316549})
		for f := range 24 {
			m.Entries = append(m.Entries, Entry{Path: fmt.Sprintf("%s/file-%02d.txt", dir, f), Type: File, Mode: 0o644,
				Size: 4096, SHA256: sha256.Sum256([]byte(dir)), Sec: 1796187985, Nsec: 751316549})
		}
	}
	slices.SortFunc(m.Entries, func(a, b Entry) int {
		if Less(a.Path, b.Path) {
			return -1
		}
		return 1
	})
	var buf bytes.Buffer
	if err := Encode(&buf, m); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(bytes.NewReader(buf.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
}
