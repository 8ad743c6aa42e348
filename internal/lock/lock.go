// Package lock keeps two imgbase commands that change the system from
// running at once.
//
// The lock is an flock(2) on a file (DefaultPath), never the file's
// existence or content: the kernel drops it when the process dies, so a
// crash cannot leave a stale lock behind, and the file is never removed
// (removing it would let two processes lock two different inodes). After
// locking, the holder writes a line describing itself into the file; it is
// only information, read back when another run gives up waiting so that
// its error can say who holds the lock.
//
// Lifecycle: Acquire (or TryAcquire) → change the system → Release. Read-only
// commands never take the lock.
package lock

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultPath is the lock file of a host. /run is a tmpfs, so the file and
// its holder line disappear at reboot.
const DefaultPath = "/run/imgbase.lock"

// pollInterval is how often a waiting run retries the lock.
const pollInterval = 100 * time.Millisecond

// maxHolderLen bounds what is read back from the file.
const maxHolderLen = 4096

// BusyError is returned when another process held the lock until the
// timeout.
type BusyError struct {
	Path string
	// Holder is the line the other process wrote, "" if it had not
	// written one yet.
	Holder string
}

func (e *BusyError) Error() string {
	h := e.Holder
	if h == "" {
		h = "holder unknown"
	}
	return fmt.Sprintf("cannot lock %s: another imgbase is running (%s); wait for it to finish", e.Path, h)
}

// Lock is a held lock. Release it when done; the kernel releases it if the
// process dies first.
type Lock struct {
	f    *os.File
	path string
}

// Holder describes this process for the lock file: "pid 123: imgbase
// layer --add".
func Holder(argv []string) string {
	return fmt.Sprintf("pid %d: %s", os.Getpid(), strings.Join(argv, " "))
}

// Acquire locks path, retrying every 100 ms until timeout has passed or ctx
// ends, then writes holder into the file. A lock still held by someone
// else at the timeout is a *BusyError naming them; timeout 0 tries once.
func Acquire(ctx context.Context, path, holder string, timeout time.Duration) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot lock %s: %w", path, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		ok, err := tryFlock(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("cannot lock %s: %w", path, err)
		}
		if ok {
			l := &Lock{f: f, path: path}
			if err := l.writeHolder(holder); err != nil {
				l.Release()
				return nil, err
			}
			return l, nil
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			f.Close()
			return nil, &BusyError{Path: path, Holder: readHolder(path)}
		}
		t := time.NewTimer(min(wait, pollInterval))
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, fmt.Errorf("cannot lock %s: %w", path, ctx.Err())
		case <-t.C:
		}
	}
}

// TryAcquire is Acquire without waiting: a held lock is a *BusyError at
// once, so that a caller can tell the user whom it is about to wait for.
func TryAcquire(path, holder string) (*Lock, error) {
	return Acquire(context.Background(), path, holder, 0)
}

// tryFlock takes the exclusive lock without blocking; false means someone
// else holds it.
func tryFlock(f *os.File) (bool, error) {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, unix.EWOULDBLOCK):
			return false, nil
		case errors.Is(err, unix.EINTR):
			continue
		default:
			return false, err
		}
	}
}

// writeHolder replaces the file's content in place. Not atomicfile: a
// rename would put a new inode at path, and the next process would lock
// that one while this lock sits on the old one.
func (l *Lock) writeHolder(holder string) error {
	line := strings.ReplaceAll(holder, "\n", " ") + "\n"
	if err := l.f.Truncate(0); err != nil {
		return fmt.Errorf("cannot lock %s: cannot record holder: %w", l.path, err)
	}
	if _, err := l.f.WriteAt([]byte(line), 0); err != nil {
		return fmt.Errorf("cannot lock %s: cannot record holder: %w", l.path, err)
	}
	return nil
}

// readHolder returns the holder line in path, "" when there is none. The
// holder may be between truncating and writing; that reads as unknown.
func readHolder(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	buf, _ := io.ReadAll(io.LimitReader(f, maxHolderLen))
	return strings.TrimSpace(string(buf))
}

// Path returns the locked file.
func (l *Lock) Path() string { return l.path }

// Release clears the holder line and unlocks. Calling it again does
// nothing.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	// Clear the line while still holding the lock, so nobody reads a
	// holder that is gone; a failure here does not matter, the unlock does.
	_ = l.f.Truncate(0)
	err := l.f.Close() // closing the only descriptor drops the flock
	l.f = nil
	if err != nil {
		return fmt.Errorf("cannot unlock %s: %w", l.path, err)
	}
	return nil
}
