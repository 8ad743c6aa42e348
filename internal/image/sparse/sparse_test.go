package sparse

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// garbageFile stands in for a thin LV whose pool chunks hold stale data:
// every byte is non-zero, so an untouched byte is recognisable.
func garbageFile(t testing.TB, size int64, seed uint64) (*os.File, []byte) {
	t.Helper()
	g := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, 7))
	for i := range g {
		g[i] = byte(r.IntN(255) + 1)
	}
	path := filepath.Join(t.TempDir(), "lv")
	if err := os.WriteFile(path, g, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, g
}

// checkChunkRule verifies dst against the rule: a chunk holding any data
// in img equals img exactly, an all-zero chunk still holds the garbage.
// It counts data chunks itself, byte by byte, as the reference.
func checkChunkRule(t *testing.T, dst *os.File, img, garbage []byte, chunk int64, st Stats) {
	t.Helper()
	got, err := os.ReadFile(dst.Name())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(garbage) {
		t.Fatalf("destination changed size: %d, was %d", len(got), len(garbage))
	}
	var data, chunks int64
	size := int64(len(img))
	for off := int64(0); off < size; off += chunk {
		end := min(off+chunk, size)
		hasData := false
		for _, c := range img[off:end] {
			if c != 0 {
				hasData = true
				break
			}
		}
		chunks++
		want := garbage[off:end]
		if hasData {
			data++
			want = img[off:end]
		}
		if !bytes.Equal(got[off:end], want) {
			t.Fatalf("chunk at %d (data=%v) differs from what the rule demands", off, hasData)
		}
	}
	if !bytes.Equal(got[size:], garbage[size:]) {
		t.Fatalf("bytes past the image's end were written")
	}
	if st.Chunks != chunks || st.DataChunks != data || st.ZeroChunks != chunks-data {
		t.Fatalf("stats %+v, want %d chunks, %d with data", st, chunks, data)
	}
	wantWritten := int64(0)
	for off := int64(0); off < size; off += chunk {
		if !isZeroRef(img[off:min(off+chunk, size)]) {
			wantWritten += min(chunk, size-off)
		}
	}
	if st.Written != wantWritten {
		t.Fatalf("wrote %d bytes, want %d", st.Written, wantWritten)
	}
	var nonZero int64
	for off := int64(0); off < size; off += 4096 {
		if !isZeroRef(img[off:min(off+4096, size)]) {
			nonZero += min(4096, size-off)
		}
	}
	if st.NonZero != nonZero {
		t.Fatalf("NonZero = %d, want %d", st.NonZero, nonZero)
	}
}

func isZeroRef(p []byte) bool {
	for _, c := range p {
		if c != 0 {
			return false
		}
	}
	return true
}

// pattern builds an image of n chunks: each chunk is zero, full of data,
// or zero but for one byte at its start, middle or end.
func pattern(chunk int64, kinds string) []byte {
	img := make([]byte, chunk*int64(len(kinds)))
	for i, k := range kinds {
		c := img[int64(i)*chunk : int64(i+1)*chunk]
		switch k {
		case 'D':
			for j := range c {
				c[j] = byte(j%251 + 1)
			}
		case 's':
			c[0] = 0xAA
		case 'm':
			c[len(c)/2] = 0xBB
		case 'e':
			c[len(c)-1] = 0xCC
		case '0':
		}
	}
	return img
}

func TestChunkRule(t *testing.T) {
	for _, c := range []struct {
		name  string
		chunk int64
		kinds string
		cut   int64 // bytes cut off the end: an image that ends mid-chunk
	}{
		{"64k mixed", 64 << 10, "0D0sme00DD0e", 0},
		{"64k all zero", 64 << 10, "000000", 0},
		{"64k all data", 64 << 10, "DDDD", 0},
		{"64k ends mid-chunk", 64 << 10, "D0me", 1000},
		{"64k ends mid-chunk in zeros", 64 << 10, "D0m0", 3},
		{"512 bytes", 512, "0D0sme0", 0},
		{"1 MiB", 1 << 20, "0e0sD0m", 0},
		// Chunks larger than a buffer are examined in parts: data only
		// in the last part must still get the whole chunk written.
		{"12 MiB", 12 << 20, "e0sm", 0},
		{"5 MiB", 5 << 20, "0me", 12345},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := pattern(c.chunk, c.kinds)
			img = img[:int64(len(img))-c.cut]
			dst, garbage := garbageFile(t, int64(len(img))+c.chunk, 1)
			var last int64
			st, err := Write(context.Background(), dst, bytes.NewReader(img), int64(len(img)), c.chunk, func(done int64) {
				if done <= last || done > int64(len(img)) {
					t.Errorf("progress went from %d to %d", last, done)
				}
				last = done
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(img) > 0 && last != int64(len(img)) {
				t.Errorf("progress ended at %d of %d", last, len(img))
			}
			checkChunkRule(t, dst, img, garbage, c.chunk, st)
			scan, err := Scan(context.Background(), bytes.NewReader(img), int64(len(img)), c.chunk, nil)
			if err != nil || scan != st {
				t.Fatalf("Scan = %+v, %v; Write said %+v", scan, err, st)
			}
		})
	}
}

// TestChunkRuleRandom throws random sparse images at the writer: runs of
// zeros and data of random lengths not aligned to anything.
func TestChunkRuleRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(42, 42))
	for i := range 40 {
		chunk := []int64{512, 4096, 64 << 10, 128 << 10, 3 * 64 << 10}[i%5]
		size := r.Int64N(6<<20) + 1
		img := make([]byte, size)
		for off := int64(0); off < size; {
			n := min(size-off, r.Int64N(300<<10)+1)
			if r.IntN(3) == 0 {
				for j := off; j < off+n; j++ {
					img[j] = byte(r.IntN(256))
				}
			}
			off += n
		}
		dst, garbage := garbageFile(t, size+chunk, uint64(i))
		st, err := Write(context.Background(), dst, bytes.NewReader(img), size, chunk, nil)
		if err != nil {
			t.Fatal(err)
		}
		checkChunkRule(t, dst, img, garbage, chunk, st)
	}
}

func TestWriteRefuses(t *testing.T) {
	img := pattern(4096, "DD")
	dst, _ := garbageFile(t, 3*4096, 1)
	for _, chunk := range []int64{0, -512, 1000} {
		if _, err := Write(context.Background(), dst, bytes.NewReader(img), int64(len(img)), chunk, nil); err == nil {
			t.Errorf("chunk size %d accepted", chunk)
		}
	}
	// A source shorter than the size it claims is a truncated image.
	_, err := Write(context.Background(), dst, bytes.NewReader(img), int64(len(img))+4096, 4096, nil)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short source: got %v, want io.ErrUnexpectedEOF", err)
	}
	// A cancelled context stops the copy.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	big := make([]byte, 64<<20)
	big[0] = 1
	if _, err := Scan(ctx, bytes.NewReader(big), int64(len(big)), 64<<10, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v", err)
	}
	// A destination that cannot be written is reported.
	ro, err := os.Open(dst.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := Write(context.Background(), ro, bytes.NewReader(img), int64(len(img)), 4096, nil); err == nil {
		t.Error("write to a read-only file succeeded")
	}
}

func TestEmpty(t *testing.T) {
	dst, _ := garbageFile(t, 4096, 1)
	st, err := Write(context.Background(), dst, bytes.NewReader(nil), 0, 4096, nil)
	if err != nil || st != (Stats{}) {
		t.Fatalf("got %+v, %v", st, err)
	}
}

func TestUnitSize(t *testing.T) {
	for _, chunk := range []int64{512, 64 << 10, MaxBuffer, MaxBuffer + 512, 5 << 20, 12 << 20, 1 << 30, 3 * 64 << 10 * 1000} {
		u := unitSize(chunk)
		if u > MaxBuffer && chunk > MaxBuffer || u%512 != 0 || chunk%u != 0 {
			t.Errorf("unitSize(%d) = %d", chunk, u)
		}
	}
}

// BenchmarkWrite copies a 256 MiB image, half data and half zero in
// alternating 1 MiB runs, onto a file with 64 KiB chunks.
func BenchmarkWrite(b *testing.B) {
	const size, chunk = 256 << 20, 64 << 10
	img := make([]byte, size)
	for off := 0; off < size; off += 2 << 20 {
		for j := off; j < off+1<<20; j++ {
			img[j] = byte(j)
		}
	}
	src := bytes.NewReader(img)
	dst, err := os.Create(filepath.Join(b.TempDir(), "lv"))
	if err != nil {
		b.Fatal(err)
	}
	defer dst.Close()
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Write(context.Background(), dst, src, size, chunk, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScan measures the zero test alone on an all-zero image, the
// worst case for it.
func BenchmarkScan(b *testing.B) {
	const size, chunk = 256 << 20, 64 << 10
	src := bytes.NewReader(make([]byte, size))
	b.SetBytes(size)
	for b.Loop() {
		if _, err := Scan(context.Background(), src, size, chunk, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDeviceTooSmall writes to a real loop device, which cannot grow: an
// image larger than it is refused before anything is written.
func TestDeviceTooSmall(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("loop devices need root")
	}
	if _, err := exec.LookPath("losetup"); err != nil {
		t.Skip("losetup is not installed")
	}
	backing, garbage := garbageFile(t, 1<<20, 3)
	out, err := exec.Command("losetup", "-f", "--show", backing.Name()).Output()
	if err != nil {
		t.Skipf("no loop device: %v", err)
	}
	loop := strings.TrimSpace(string(out))
	defer exec.Command("losetup", "-d", loop).Run()
	dev, err := os.OpenFile(loop, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	img := pattern(64<<10, "DDDDDDDDDDDDDDDDD") // 17 chunks, 1 MiB + 64 KiB
	if _, err := Write(context.Background(), dev, bytes.NewReader(img), int64(len(img)), 64<<10, nil); err == nil || !strings.Contains(err.Error(), "the device has 1048576 bytes") {
		t.Fatalf("got %v", err)
	}
	if got, _ := os.ReadFile(backing.Name()); !bytes.Equal(got, garbage) {
		t.Fatal("the device was written to")
	}
	// An image that fits goes through the device like through a file.
	img = pattern(64<<10, "0D0me0sD")
	st, err := Write(context.Background(), dev, bytes.NewReader(img), int64(len(img)), 64<<10, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkChunkRule(t, backing, img, garbage, 64<<10, st)
}

// A buffered write longer than a few writeback windows goes through the
// flusher goroutine and still lands byte for byte. The first data chunk
// starts mid-block, which ends direct I/O at once.
func TestWriteThroughFlusher(t *testing.T) {
	size := int64(4*WritebackWindow + 12345)
	src := make([]byte, size)
	for i := int64(512); i < size; i += 3 << 20 {
		copy(src[i:], "data block")
	}
	dst, err := os.Create(filepath.Join(t.TempDir(), "dst"))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if _, err := Write(context.Background(), dst, bytes.NewReader(src), size, 512, nil); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dst.Name())
	if err != nil {
		t.Fatal(err)
	}
	// A regular file ends after its last written chunk; the rest is zero.
	if !bytes.Equal(got, src[:len(got)]) || bytes.ContainsFunc(src[len(got):], func(r rune) bool { return r != 0 }) {
		t.Fatalf("copy differs (len %d of %d)", len(got), size)
	}
}

// On a filesystem with O_DIRECT (ext4, as the host's /tmp here) both the
// image and the destination are used directly; the image's last block is
// partial, so the copy ends with a buffered write. The result must still
// follow the chunk rule byte for byte.
func TestDirectIO(t *testing.T) {
	const chunk = 64 << 10
	img := pattern(chunk, "D0sme0DD0e")
	img = img[:len(img)-777] // ends mid-block
	srcPath := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(srcPath, img, 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(srcPath)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	rd := newDirectReader(src)
	if rd.direct == nil {
		t.Skip("the temporary directory's filesystem has no O_DIRECT")
	}
	rd.close()
	dst, garbage := garbageFile(t, int64(len(img))+chunk, 3)
	if w := newDirectWriter(dst); !w.direct {
		t.Fatal("O_DIRECT could be set on the image's filesystem but not on the destination's")
	}
	st, err := Write(context.Background(), dst, src, int64(len(img)), chunk, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkChunkRule(t, dst, img, garbage, chunk, st)
}

// A direct read into a buffer that is not aligned falls back to a plain
// read and still returns the right bytes; a short file says EOF.
func TestDirectReaderUnaligned(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 1024) // 16 KiB
	path := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd := newDirectReader(f)
	defer rd.close()
	buf := alignedBuffer(8192 + align)
	for _, c := range []struct {
		p   []byte
		off int64
	}{
		{buf[:8192], 4096},      // aligned: direct when possible
		{buf[1 : 1+4096], 4096}, // unaligned buffer
		{buf[:100], 5},          // unaligned offset and length
		{buf[:4096+10], 8192},   // rounded up to two blocks
	} {
		n, err := rd.ReadAt(c.p, c.off)
		if err != nil || n != len(c.p) || !bytes.Equal(c.p[:n], data[c.off:c.off+int64(n)]) {
			t.Fatalf("ReadAt(%d bytes at %d) = %d, %v", len(c.p), c.off, n, err)
		}
	}
	if n, err := rd.ReadAt(buf[:8192], 12288); !errors.Is(err, io.EOF) || n != 4096 {
		t.Fatalf("ReadAt past the end = %d, %v; want 4096, EOF", n, err)
	}
}

// failingWriter fails on its nth Write.
type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.n--; w.n == 0 {
		return 0, errors.New("digest broke")
	}
	return len(p), nil
}

func TestWriteTeeSeesEveryByteInOrder(t *testing.T) {
	// Data, zero chunks and a tail shorter than a chunk, larger than one
	// buffer so that several blocks pass.
	const chunk = 64 << 10
	size := int64(3*MaxBuffer + 5*chunk + 1536)
	img := make([]byte, size+4096) // bytes past size are not the image's
	r := rand.New(rand.NewPCG(3, 4))
	for off := int64(0); off < size; off += chunk {
		if r.IntN(3) == 0 {
			continue
		}
		for i := off; i < min(off+chunk, size); i++ {
			img[i] = byte(r.IntN(256))
		}
	}
	for i := size; i < int64(len(img)); i++ {
		img[i] = 0xff
	}
	dst, _ := garbageFile(t, size, 1)
	var seen bytes.Buffer
	if _, err := WriteTee(context.Background(), dst, bytes.NewReader(img), size, chunk, nil, &seen); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(seen.Bytes(), img[:size]) {
		t.Errorf("tee saw %d bytes, not the image's %d in order", seen.Len(), size)
	}
	dst2, _ := garbageFile(t, size, 2)
	if _, err := WriteTee(context.Background(), dst2, bytes.NewReader(img), size, chunk, nil, &failingWriter{n: 2}); err == nil || !strings.Contains(err.Error(), "digest broke") {
		t.Errorf("a failing tee gave %v", err)
	}
}
