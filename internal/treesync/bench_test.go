package treesync

import (
	"context"
	"testing"
)

// BenchmarkSync3Percent syncs a tree of 10,000 small files to a version of
// it where 3 % of the files changed, and back: with both manifests given
// (recorded at install), and with both built by the sync (no manifest).
func BenchmarkSync3Percent(b *testing.B) {
	a, c, dst := tempDir(b), tempDir(b), tempDir(b)
	manyFiles(b, a, 10000)
	if _, err := Sync(context.Background(), a, c, Options{}); err != nil {
		b.Fatal(err)
	}
	changed := changeEvery(b, c, 10000, 33, 0xbb)
	if _, err := Sync(context.Background(), a, dst, Options{}); err != nil {
		b.Fatal(err)
	}
	ma, mc := build(b, a), build(b, c)
	for _, given := range []bool{true, false} {
		name := "manifests=given"
		if !given {
			name = "manifests=built"
		}
		b.Run(name, func(b *testing.B) {
			var written int64
			for i := 0; i < b.N; i++ {
				// dst holds a before an even iteration, c before an odd one.
				from, to, mfrom, mto := c, dst, mc, ma
				if i%2 == 1 {
					from, mfrom, mto = a, ma, mc
				}
				o := Options{}
				if given {
					o.Src, o.Dst = mfrom, mto
				}
				r, err := Sync(context.Background(), from, to, o)
				if err != nil {
					b.Fatal(err)
				}
				if r.Rewritten != 304 {
					b.Fatalf("report %+v", r)
				}
				written += r.BytesWritten
			}
			b.ReportMetric(float64(written)/float64(b.N), "bytes-written/op")
			b.ReportMetric(float64(changed), "bytes-changed")
			if b.N%2 == 1 { // leave dst holding a for the next sub-benchmark
				if _, err := Sync(context.Background(), a, dst, Options{Src: ma, Dst: mc}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
