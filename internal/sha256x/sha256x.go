// Package sha256x computes SHA-256 with the fastest implementation this
// machine has: Go's own, or the kernel's, through its crypto API (AF_ALG).
//
// Why the kernel's. Go dispatches SHA-256 to the CPU's SHA extensions or
// AVX2 when it has them, and otherwise runs its generic code, which is
// slow: 24 MB/s in the TCG guests imgbase is tested in (16 MB/s while the
// other core writes files), against 52 MB/s for the kernel's C on the same
// CPU (BenchmarkGo, BenchmarkKernel). The same holds for a VM given a
// baseline CPU model (qemu64, kvm64) that hides those extensions. imgbase
// hashes every byte of a pulled image, every byte of a checksummed one and
// every file of a tree it describes; at such rates the hash, not the disk,
// sets the pace.
//
// Which one is used is measured, once per process, on the first hash big
// enough to matter: both hash the same mebibyte and the faster is kept
// (Go's on any machine whose CPU it accelerates). A kernel without AF_ALG
// (algif_hash not built, or refused by a sandbox) means Go's. Inputs up to
// SmallSize bytes are always hashed by Go: the kernel's costs a few
// syscalls per hash, more than a small file's hashing.
package sha256x

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Size is the length of a digest.
const Size = sha256.Size

// SmallSize is the input up to which Go's implementation always hashes:
// the kernel's is only considered beyond it.
const SmallSize = 64 << 10

// New returns a hash.Hash computing SHA-256. It buffers the first
// SmallSize bytes; a longer input goes to the kernel when the kernel's
// implementation is the faster here, else to Go's.
func New() hash.Hash {
	return &digest{}
}

// digest starts as a buffer; past SmallSize it becomes a Go hash or a
// kernel one (big), fed the buffer first. Reset keeps the big hash aside
// (spare) for the next long input: a tree's files hashed one after another
// reuse one kernel socket.
type digest struct {
	small      []byte
	big, spare hash.Hash
}

func (d *digest) Write(p []byte) (int, error) {
	if d.big != nil {
		return d.big.Write(p)
	}
	if len(d.small)+len(p) <= SmallSize {
		d.small = append(d.small, p...)
		return len(p), nil
	}
	if d.big, d.spare = d.spare, nil; d.big == nil {
		d.big = newBig()
	}
	if len(d.small) > 0 {
		if _, err := d.big.Write(d.small); err != nil {
			return 0, err
		}
	}
	// The buffer's room stays for the next input after a Reset.
	d.small = d.small[:0]
	return d.big.Write(p)
}

func (d *digest) Sum(b []byte) []byte {
	if d.big != nil {
		return d.big.Sum(b)
	}
	s := sha256.Sum256(d.small)
	return append(b, s[:]...)
}

func (d *digest) Reset() {
	if d.big != nil {
		d.big.Reset()
		d.spare = d.big
	}
	d.small, d.big = d.small[:0], nil
}

func (d *digest) Size() int      { return Size }
func (d *digest) BlockSize() int { return sha256.BlockSize }

// newBig returns the faster of the two implementations for a long input.
func newBig() hash.Hash {
	if useKernel() {
		if k, err := newKernel(); err == nil {
			return k
		}
	}
	return sha256.New()
}

// choice is which implementation hashes long inputs, and why.
type choice struct {
	kernel bool
	why    string
}

var (
	chooseOnce sync.Once
	chosen     atomic.Pointer[choice]
)

// useKernel measures both implementations on the same mebibyte, once.
func useKernel() bool {
	chooseOnce.Do(func() {
		kernel, why := kernelFaster(1 << 20)
		chosen.Store(&choice{kernel, why})
	})
	return chosen.Load().kernel
}

// Chosen says which implementation hashes long inputs in this process and
// why, for a debug trace; "" until the first such input.
func Chosen() string {
	if c := chosen.Load(); c != nil {
		return c.why
	}
	return ""
}

func kernelFaster(n int) (bool, string) {
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(i * 7)
	}
	k, err := newKernel()
	if err != nil {
		return false, "go (no kernel hash: " + err.Error() + ")"
	}
	defer k.Close()
	start := time.Now()
	k.Write(data)
	ks := k.Sum(nil)
	kt := time.Since(start)
	start = time.Now()
	gs := sha256.Sum256(data)
	gt := time.Since(start)
	// A kernel that answers wrongly is never used.
	if string(ks) != string(gs[:]) {
		return false, "go (the kernel's digest was wrong)"
	}
	timing := fmt.Sprintf(" (1 MiB: kernel %v, go %v)", kt.Round(time.Microsecond), gt.Round(time.Microsecond))
	if kt < gt {
		return true, "kernel" + timing
	}
	return false, "go" + timing
}

// kernel is a SHA-256 computed by the kernel: op is an AF_ALG operation
// socket, fed with MSG_MORE; its digest is read from a clone of it (accept
// on op), so that Sum leaves the running hash as it was.
type kernel struct {
	op      int
	cleanup runtime.Cleanup
	// err is a write the kernel refused: the digest would be wrong, and
	// Sum panics rather than return it.
	err error
}

var (
	tfmOnce sync.Once
	tfm     int
	tfmErr  error
)

// transform is the process's one bound "hash"/"sha256" socket; each hash
// is an operation socket accepted from it.
func transform() (int, error) {
	tfmOnce.Do(func() {
		tfm, tfmErr = unix.Socket(unix.AF_ALG, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if tfmErr != nil {
			return
		}
		if tfmErr = unix.Bind(tfm, &unix.SockaddrALG{Type: "hash", Name: "sha256"}); tfmErr != nil {
			unix.Close(tfm)
		}
	})
	return tfm, tfmErr
}

// accept returns a new operation socket from fd: from the transform, a
// fresh hash; from an operation socket, a copy of its state. x/sys's
// Accept cannot decode an AF_ALG address, so it is called without one.
func accept(fd int) (int, error) {
	for {
		nfd, _, errno := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(fd), 0, 0, unix.SOCK_CLOEXEC, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return -1, errno
		}
		return int(nfd), nil
	}
}

func newKernel() (*kernel, error) {
	t, err := transform()
	if err != nil {
		return nil, err
	}
	op, err := accept(t)
	if err != nil {
		return nil, err
	}
	k := &kernel{}
	k.own(op)
	return k, nil
}

// own makes op k's operation socket, closed when k is collected unless
// Reset or Close closes it first.
func (k *kernel) own(op int) {
	k.op, k.err = op, nil
	k.cleanup = runtime.AddCleanup(k, func(fd int) { unix.Close(fd) }, op)
}

func (k *kernel) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := unix.SendmsgN(k.op, p[n:], nil, nil, unix.MSG_MORE)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			k.err = err
			return n, err
		}
		n += m
	}
	runtime.KeepAlive(k)
	return n, nil
}

func (k *kernel) Sum(b []byte) []byte {
	if k.err != nil {
		panic("sha256x: the kernel refused part of the data: " + k.err.Error())
	}
	c, err := accept(k.op)
	runtime.KeepAlive(k)
	if err != nil {
		// hash.Hash has no error to return; a kernel that refused a clone
		// it granted before is out of memory.
		panic("sha256x: cannot read the kernel's digest: " + err.Error())
	}
	defer unix.Close(c)
	var s [Size]byte
	for {
		n, err := unix.Read(c, s[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil || n != Size {
			panic("sha256x: cannot read the kernel's digest")
		}
		break
	}
	return append(b, s[:]...)
}

func (k *kernel) Reset() {
	op, err := accept(tfm)
	if err != nil {
		panic("sha256x: cannot start a new kernel hash: " + err.Error())
	}
	k.cleanup.Stop()
	unix.Close(k.op)
	k.own(op)
}

// Close releases the socket now rather than when k is collected.
func (k *kernel) Close() error {
	k.cleanup.Stop()
	return unix.Close(k.op)
}

func (k *kernel) Size() int      { return Size }
func (k *kernel) BlockSize() int { return sha256.BlockSize }
