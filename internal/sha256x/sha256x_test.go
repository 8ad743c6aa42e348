package sha256x

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"testing"
)

func kernelOrSkip(t testing.TB) *kernel {
	k, err := newKernel()
	if err != nil {
		t.Skipf("no AF_ALG sha256 here: %v", err)
	}
	return k
}

func data(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), 1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// The kernel's digest equals Go's for every size around the block and
// chunk boundaries, written in pieces of every shape.
func TestKernelMatchesGo(t *testing.T) {
	k := kernelOrSkip(t)
	defer k.Close()
	for _, n := range []int{0, 1, 55, 56, 63, 64, 65, 4095, 4096, 4097, 65536, 65537, 1 << 20, 3<<20 + 17} {
		b := data(n)
		want := sha256.Sum256(b)
		for _, piece := range []int{1, 7, 64, 4096, 1 << 20} {
			if piece == 1 && n > 70000 {
				continue
			}
			k.Reset()
			for off := 0; off < n; off += piece {
				end := min(off+piece, n)
				if m, err := k.Write(b[off:end]); err != nil || m != end-off {
					t.Fatalf("n=%d piece=%d: write %d, %v", n, piece, m, err)
				}
			}
			if got := k.Sum(nil); !bytes.Equal(got, want[:]) {
				t.Errorf("n=%d piece=%d: %x, want %x", n, piece, got, want)
			}
		}
	}
}

// Sum leaves the running hash as it was, as hash.Hash requires.
func TestKernelSumMidStream(t *testing.T) {
	k := kernelOrSkip(t)
	defer k.Close()
	a, b := data(100_000), data(200_000)
	k.Write(a)
	first := sha256.Sum256(a)
	if got := k.Sum([]byte("prefix")); !bytes.Equal(got, append([]byte("prefix"), first[:]...)) {
		t.Errorf("mid-stream sum %x", got)
	}
	k.Write(b)
	both := sha256.Sum256(append(append([]byte{}, a...), b...))
	if got := k.Sum(nil); !bytes.Equal(got, both[:]) {
		t.Errorf("sum after more writes %x, want %x", got, both)
	}
	if got := k.Sum(nil); !bytes.Equal(got, both[:]) {
		t.Errorf("second sum %x", got)
	}
}

// New gives Go's digests whichever implementation runs, across the switch
// from the buffer to the big hash.
func TestNewMatchesGo(t *testing.T) {
	for _, force := range []bool{false, true} {
		if force {
			kernelOrSkip(t).Close()
			useKernel()
			old := chosen.Load()
			chosen.Store(&choice{kernel: true, why: "forced by the test"})
			defer chosen.Store(old)
		}
		for _, n := range []int{0, 1, SmallSize - 1, SmallSize, SmallSize + 1, 5 << 20} {
			b := data(n)
			want := sha256.Sum256(b)
			h := New()
			for off := 0; off < n; off += 10_000 {
				h.Write(b[off:min(off+10_000, n)])
			}
			if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
				t.Errorf("kernel=%v New, %d bytes in pieces: %x", force, n, got)
			}
			h.Reset()
			h.Write(b)
			if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
				t.Errorf("kernel=%v after Reset, %d bytes: %x", force, n, got)
			}
		}
	}
}

// BenchmarkGo and BenchmarkKernel hash 8 MiB in 1 MiB writes: which is
// faster depends on the CPU (see the package doc); New picks by measuring.
func BenchmarkGo(b *testing.B) {
	buf := data(1 << 20)
	b.SetBytes(8 << 20)
	for b.Loop() {
		h := sha256.New()
		for range 8 {
			h.Write(buf)
		}
		h.Sum(nil)
	}
}

func BenchmarkKernel(b *testing.B) {
	buf := data(1 << 20)
	k := kernelOrSkip(b)
	defer k.Close()
	b.SetBytes(8 << 20)
	for b.Loop() {
		k.Reset()
		for range 8 {
			k.Write(buf)
		}
		k.Sum(nil)
	}
}
