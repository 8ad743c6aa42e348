package migrate

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkEtc merges an /etc of 2000 files in 100 directories where the
// admin changed 120 files and added 50, and the image changed 400
// (20 conflicts): about
// the size of a full server's /etc. Each iteration gets a fresh new layer.
func BenchmarkEtc(b *testing.B) {
	base := b.TempDir()
	roots := Roots{OldBase: filepath.Join(base, "old"), Running: filepath.Join(base, "run")}
	content := make([]byte, 2048)
	for i := range content {
		content[i] = byte('a' + i%26)
	}
	write := func(root string, i int, suffix string) {
		p := filepath.Join(root, "etc", fmt.Sprintf("d%02d", i%100), fmt.Sprintf("f%04d.conf", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, append(content, suffix...), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < 2000; i++ {
		write(roots.OldBase, i, "")
		suffix := ""
		if i%20 == 3 || i%100 == 0 {
			suffix = "admin"
		}
		write(roots.Running, i, suffix)
	}
	for i := 2000; i < 2050; i++ {
		write(roots.Running, i, "added")
	}
	for n := 0; n < b.N; n++ {
		b.StopTimer()
		roots.New = filepath.Join(base, fmt.Sprintf("new%d", n))
		for i := 0; i < 2000; i++ {
			suffix := ""
			if i%5 == 0 {
				suffix = "image"
			}
			write(roots.New, i, suffix)
		}
		b.StartTimer()
		rep, err := Etc(context.Background(), roots, quietLog())
		if err != nil {
			b.Fatal(err)
		}
		if len(rep.Conflicts) != 20 || len(rep.Added) != 50 {
			b.Fatalf("conflicts %d added %d, want 20 and 50", len(rep.Conflicts), len(rep.Added))
		}
	}
}
