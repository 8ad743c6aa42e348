package ocilayer

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
)

// BenchmarkApply: a 64 MiB gzip layer of 2,000 files (some compressible
// text, some random, a few sparse), applied to a fresh directory on disk.
func BenchmarkApply(b *testing.B) {
	benchApply(b, true)
}

// BenchmarkApplyPlain: the same layer uncompressed, as the test images'
// layers are: the digest's sha256 is then the only CPU-heavy part. Run
// with GODEBUG=cpu.sha=off,cpu.avx2=off,cpu.ssse3=off to see a CPU without
// sha256 instructions (a TCG guest's): the hash runs on its own goroutine
// (pipedHash), so with two cores the layer takes about the longer of the
// hash and the writes rather than their sum.
func BenchmarkApplyPlain(b *testing.B) {
	benchApply(b, false)
}

func benchApply(b *testing.B, compress bool) {
	var raw bytes.Buffer
	w := tar.NewWriter(&raw)
	rng := rand.New(rand.NewPCG(1, 2))
	var total int64
	for i := 0; i < 2000; i++ {
		n := 1 + rng.IntN(64<<10)
		data := make([]byte, n)
		switch i % 3 {
		case 0:
			for j := range data {
				data[j] = byte(rng.Uint32())
			}
		case 1:
			copy(data, bytes.Repeat([]byte(fmt.Sprintf("line %d of some text\n", i)), n/20+1))
		}
		if i%500 == 0 {
			data = make([]byte, 4<<20) // mostly a hole
			data[len(data)-1] = 1
		}
		total += int64(len(data))
		w.WriteHeader(&tar.Header{Name: fmt.Sprintf("d%02d/f%04d", i%50, i), Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
		w.Write(data)
	}
	w.Close()
	var blob bytes.Buffer
	if compress {
		blob.Write(gzBench(raw.Bytes()))
	} else {
		blob.Write(raw.Bytes())
	}
	d := digest(blob.Bytes())
	if p := os.Getenv("OCILAYER_BENCH_DUMP"); p != "" {
		os.WriteFile(p, blob.Bytes(), 0o644) // for timing other extractors on the same layer
	}
	b.SetBytes(total)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dir, _ := os.MkdirTemp("/var/tmp", "ocilayer-bench-")
		r, err := Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.Apply(context.Background(), bytes.NewReader(blob.Bytes()), Layer{Digest: d}, nil); err != nil {
			b.Fatal(err)
		}
		r.Close()
		b.StopTimer()
		os.RemoveAll(dir)
		b.StartTimer()
	}
}
