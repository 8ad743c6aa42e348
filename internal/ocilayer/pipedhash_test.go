package ocilayer

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"testing"
)

// Writes of every size (none, a byte, several buffers' worth), their
// slices reused by the writer as a reader's buffer is: the piped hash is
// the hash of the stream.
func TestPipedHashIsTheStreamsHash(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var stream bytes.Buffer
	p := newPipedHash(sha256.New())
	buf := make([]byte, 3*pipedBufSize+17)
	for _, n := range []int{0, 1, 4095, pipedBufSize, pipedBufSize + 1, len(buf), 7, 0, 2 * pipedBufSize} {
		for i := range buf[:n] {
			buf[i] = byte(rng.Uint32())
		}
		stream.Write(buf[:n])
		if k, err := p.Write(buf[:n]); k != n || err != nil {
			t.Fatalf("Write of %d bytes: %d, %v", n, k, err)
		}
		for i := range buf { // the caller's buffer is its own again
			buf[i] = 0xff
		}
	}
	want := sha256.Sum256(stream.Bytes())
	if got := p.sum(); !bytes.Equal(got, want[:]) {
		t.Fatalf("piped sha256 %x, want %x", got, want)
	}
	p.close() // again, after sum: no panic, no wait
}

// close without sum ends the goroutine (an Apply that failed early).
func TestPipedHashCloseWithoutSum(t *testing.T) {
	p := newPipedHash(sha256.New())
	p.Write(make([]byte, 5*pipedBufSize))
	p.close()
	select {
	case <-p.done:
	default:
		t.Fatal("the hashing goroutine is still running after close")
	}
}
