// Package sparse copies a filesystem image onto a thin logical volume
// without allocating pool space for its empty regions.
//
// A thin LV reads zeros wherever nothing was ever written, so an all-zero
// region of the image need not be written at all. The pool allocates in
// chunks (64 KiB and up), and with pool zeroing off a newly allocated chunk
// keeps whatever data it held before, so the decision is made per chunk:
// a chunk that is zero in the image is skipped, a chunk holding any data is
// written whole, its zero bytes included. Offsets are counted from the
// start of the LV, which is chunk-aligned in its pool.
package sparse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// MaxBuffer is the size of one read buffer. Three are in flight, so the
// copy holds about 3 × MaxBuffer (plus, rarely, one unit of zeros)
// whatever the image size.
const MaxBuffer = 2 << 20

// buffers in flight: one being read, one being written, one spare so
// neither side waits on the other for a full turn.
const buffers = 3

// Stats says what a pass found and did.
type Stats struct {
	// Chunks is the number of pool chunks the image spans; DataChunks of
	// them hold data and ZeroChunks are all zero.
	Chunks, DataChunks, ZeroChunks int64
	// Written is the number of bytes written to the destination
	// (DataChunks × chunk size, less the part past the image's end).
	Written int64
	// NonZero counts the bytes of the image in 4 KiB blocks that are not
	// all zero: its data as a block-granular copy (dd conv=sparse bs=4k)
	// sees it, to compare the pool space taken against.
	NonZero int64
}

// blockSize is the granularity of Stats.NonZero.
const blockSize = 4096

// DataBytes is the pool space the image takes once written: its data
// chunks, each allocated whole.
func (s Stats) DataBytes(chunk int64) int64 { return s.DataChunks * chunk }

// Progress is told how many bytes of the source have been handled so far.
// It is called from one goroutine at a time.
type Progress func(done int64)

// Write copies size bytes of src onto dst chunk by chunk, skipping the
// chunks that are all zero in src, and fsyncs dst. chunk is the thin
// pool's chunk size and must be a positive multiple of 512. dst must read
// zeros where it was never written (a new thin LV); bytes of dst in
// skipped chunks are left as they are. progress may be nil.
func Write(ctx context.Context, dst *os.File, src io.ReaderAt, size, chunk int64, progress Progress) (Stats, error) {
	return WriteTee(ctx, dst, src, size, chunk, progress, nil)
}

// WriteTee is Write that also hands every byte of src's first size bytes,
// zero chunks included, in order, to tee (a digest of the image made in
// the same read). tee runs beside the write of the same block; its error
// fails the copy.
func WriteTee(ctx context.Context, dst *os.File, src io.ReaderAt, size, chunk int64, progress Progress, tee io.Writer) (Stats, error) {
	if err := fits(dst, size); err != nil {
		return Stats{}, err
	}
	st, err := copyChunks(ctx, dst, src, size, chunk, progress, tee)
	if err != nil {
		return st, err
	}
	if err := dst.Sync(); err != nil {
		return st, fmt.Errorf("cannot sync %s: %w", dst.Name(), err)
	}
	return st, nil
}

// fits refuses a block device smaller than the image before anything is
// written; a regular file just grows.
func fits(dst *os.File, size int64) error {
	fi, err := dst.Stat()
	if err != nil {
		return fmt.Errorf("cannot write to %s: %w", dst.Name(), err)
	}
	if fi.Mode()&os.ModeDevice == 0 {
		return nil
	}
	devSize, err := dst.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("cannot size %s: %w", dst.Name(), err)
	}
	if devSize < size {
		return fmt.Errorf("cannot write a %d-byte image to %s: the device has %d bytes", size, dst.Name(), devSize)
	}
	return nil
}

// Scan reads size bytes of src and counts its data and zero chunks
// without writing anything: the pool space a Write of it would take.
func Scan(ctx context.Context, src io.ReaderAt, size, chunk int64, progress Progress) (Stats, error) {
	return copyChunks(ctx, nil, src, size, chunk, progress, nil)
}

// block is one buffer of the source at offset off.
type block struct {
	off int64
	buf []byte
	err error
}

func copyChunks(ctx context.Context, dst io.WriterAt, src io.ReaderAt, size, chunk int64, progress Progress, tee io.Writer) (Stats, error) {
	if chunk <= 0 || chunk%512 != 0 {
		return Stats{}, fmt.Errorf("cannot copy: chunk size %d is not a positive multiple of 512", chunk)
	}
	if size < 0 {
		return Stats{}, fmt.Errorf("cannot copy: negative size %d", size)
	}
	unit := unitSize(chunk)
	bufLen := unit
	if unit == chunk {
		bufLen = unit * max(1, MaxBuffer/unit)
	}
	free := make(chan []byte, buffers)
	for range buffers {
		free <- alignedBuffer(bufLen)
	}
	full := make(chan block, buffers)
	rd := newDirectReader(src)
	ctx, cancel := context.WithCancel(ctx)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		readBlocks(ctx, rd, size, free, full)
	}()
	// The reader must be gone before its file is closed.
	defer func() { cancel(); <-readDone; rd.close() }()

	w := chunkWriter{dst: dst, size: size, chunk: chunk, unit: unit}
	var wb writeback
	if f, ok := dst.(*os.File); ok {
		dw := newDirectWriter(f)
		w.dst, wb.f, wb.direct = dw, f, dw
	}
	defer wb.close()
	for b := range full {
		if b.err != nil {
			return w.st, b.err
		}
		var teed chan error
		if tee != nil {
			teed = make(chan error, 1)
			go func(p []byte) { _, err := tee.Write(p); teed <- err }(b.buf)
		}
		err := w.block(b.off, b.buf)
		if teed != nil {
			// The buffer goes back to the reader only once both are done.
			if terr := <-teed; terr != nil && err == nil {
				err = terr
			}
		}
		if err != nil {
			return w.st, err
		}
		wb.advance(b.off + int64(len(b.buf)))
		free <- b.buf[:cap(b.buf)]
		if progress != nil {
			progress(b.off + int64(len(b.buf)))
		}
	}
	if err := ctx.Err(); err != nil {
		return w.st, fmt.Errorf("cannot copy: %w", err)
	}
	w.st.Chunks = (size + chunk - 1) / chunk
	w.st.ZeroChunks = w.st.Chunks - w.st.DataChunks
	return w.st, nil
}

// WritebackWindow is how much written data may wait in the page cache
// before the writer starts pushing it to the device. Without it a
// multi-gigabyte image sits dirty in memory, progress reaches 100% long
// before the data is on disk, and the final fsync stalls with no output.
const WritebackWindow = 32 << 20

// writeback keeps the dirty data bounded: each finished window is handed
// to a flusher goroutine that writes it back and waits for it
// (sync_file_range, the technique of dd oflag=direct without its alignment
// rules). The flusher runs on its own thread, so submitting the I/O
// overlaps with reading and copying the next window instead of stalling
// it; the writer waits only when the flusher is a window behind, so at
// most about three windows are dirty. It is a hint: errors are left to the
// final fsync.
type writeback struct {
	f       *os.File
	direct  *directWriter // while it writes directly nothing is dirty
	started int64         // the start of the window being filled
	ranges  chan [2]int64
	done    chan struct{}
}

func (wb *writeback) advance(pos int64) {
	if wb.f == nil || pos-wb.started < WritebackWindow {
		return
	}
	if wb.direct != nil && wb.direct.direct {
		wb.started = pos
		return
	}
	if wb.ranges == nil {
		wb.ranges, wb.done = make(chan [2]int64, 1), make(chan struct{})
		go wb.flush(int(wb.f.Fd()))
	}
	wb.ranges <- [2]int64{wb.started, pos}
	wb.started = pos
}

func (wb *writeback) flush(fd int) {
	defer close(wb.done)
	for r := range wb.ranges {
		_ = unix.SyncFileRange(fd, r[0], r[1]-r[0],
			unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
	}
}

// close waits for the flusher to finish.
func (wb *writeback) close() {
	if wb.ranges != nil {
		close(wb.ranges)
		<-wb.done
		wb.ranges = nil
	}
}

// unitSize is the piece of a chunk examined at once: the whole chunk when
// it fits in MaxBuffer, else the largest 512-byte multiple dividing the
// chunk that does (pool chunks can be up to 1 GiB).
func unitSize(chunk int64) int64 {
	if chunk <= MaxBuffer {
		return chunk
	}
	for d := (chunk + MaxBuffer - 1) / MaxBuffer; ; d++ {
		if chunk%d == 0 && (chunk/d)%512 == 0 {
			return chunk / d
		}
	}
}

// readBlocks reads src in order into free buffers and closes full at the
// end; it runs ahead of the writer by at most the spare buffers.
func readBlocks(ctx context.Context, src io.ReaderAt, size int64, free <-chan []byte, full chan<- block) {
	defer close(full)
	for off := int64(0); off < size; {
		var buf []byte
		select {
		case buf = <-free:
		case <-ctx.Done():
			return
		}
		buf = buf[:min(int64(len(buf)), size-off)]
		n, err := src.ReadAt(buf, off)
		if n == len(buf) {
			err = nil // io.ReaderAt may say EOF with the last full read
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("cannot read image at byte %d: it ends before its %d bytes: %w", off+int64(n), size, io.ErrUnexpectedEOF)
			} else {
				err = fmt.Errorf("cannot read image at byte %d: %w", off+int64(n), err)
			}
			select {
			case full <- block{err: err}:
			case <-ctx.Done():
			}
			return
		}
		select {
		case full <- block{off: off, buf: buf}:
		case <-ctx.Done():
			return
		}
		off += int64(n)
	}
}

// chunkWriter applies the chunk rule to consecutive blocks. A block holds
// whole units; a unit is a whole chunk or an equal part of one.
type chunkWriter struct {
	dst         io.WriterAt // nil: only count
	size, chunk int64
	unit        int64
	st          Stats

	// For chunks larger than a unit: whether the current chunk already
	// has data (so the rest of it is written whatever it holds), and how
	// many of its leading bytes were zero and not yet written.
	dirty       bool
	pendingZero int64
	zeros       []byte // made the first time leading zero units are written
	lastBlock   int64  // 1 + the last block counted in NonZero, 0 for none
}

func (w *chunkWriter) block(off int64, buf []byte) error {
	// run is the span of buf waiting to be written in one call, so that
	// neighbouring data chunks make one large write.
	runStart, runEnd := int64(-1), int64(-1)
	flush := func() error {
		if runStart < 0 {
			return nil
		}
		err := w.write(buf[runStart-off:runEnd-off], runStart)
		runStart, runEnd = -1, -1
		return err
	}
	for u := int64(0); u < int64(len(buf)); u += w.unit {
		piece := buf[u:min(u+w.unit, int64(len(buf)))]
		at := off + u
		if at%w.chunk == 0 {
			w.dirty, w.pendingZero = false, 0
		}
		if !w.dirty && isZero(piece) {
			w.pendingZero += int64(len(piece))
			if err := flush(); err != nil {
				return err
			}
			continue
		}
		if !w.dirty {
			w.dirty = true
			w.st.DataChunks++
			if w.pendingZero > 0 {
				// The chunk began with zero units that were skipped
				// while it looked empty; it is allocated now, so they
				// must be written too.
				if err := flush(); err != nil {
					return err
				}
				if err := w.writeZeros(at-w.pendingZero, w.pendingZero); err != nil {
					return err
				}
				w.pendingZero = 0
			}
		}
		if runStart < 0 {
			runStart = at
		}
		runEnd = at + int64(len(piece))
		w.countNonZero(piece, at)
	}
	return flush()
}

func (w *chunkWriter) write(p []byte, at int64) error {
	w.st.Written += int64(len(p))
	if w.dst == nil {
		return nil
	}
	if _, err := w.dst.WriteAt(p, at); err != nil {
		return fmt.Errorf("cannot write at byte %d: %w", at, err)
	}
	return nil
}

// countNonZero adds the 4 KiB blocks of the image that p, at offset at,
// shows to hold data. Pieces come in increasing order and may be smaller
// than a block; a block is counted once, whole (short at the image end).
// Only written pieces are looked at: a skipped piece is all zero.
func (w *chunkWriter) countNonZero(p []byte, at int64) {
	for len(p) > 0 {
		blk := at / blockSize
		n := min(int64(len(p)), (blk+1)*blockSize-at)
		if blk+1 != w.lastBlock && !isZero(p[:n]) {
			w.st.NonZero += min(blockSize, w.size-blk*blockSize)
			w.lastBlock = blk + 1
		}
		p, at = p[n:], at+n
	}
}

// writeZeros writes n zero bytes at at, a unit at a time.
func (w *chunkWriter) writeZeros(at, n int64) error {
	if w.zeros == nil {
		w.zeros = alignedBuffer(w.unit)
	}
	for n > 0 {
		k := min(n, w.unit)
		if err := w.write(w.zeros[:k], at); err != nil {
			return err
		}
		at, n = at+k, n-k
	}
	return nil
}

// isZero reports whether p holds only zero bytes. Comparing p with itself
// shifted by one byte says every byte equals its neighbour; bytes.Equal
// runs the runtime's vectorised memequal and needs no zero buffer.
func isZero(p []byte) bool {
	return len(p) == 0 || p[0] == 0 && bytes.Equal(p[1:], p[:len(p)-1])
}
