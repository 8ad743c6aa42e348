package lock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSecondLockTimesOutNamingHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imgbase.lock")
	first, err := Acquire(context.Background(), path, "pid 123: imgbase layer --add", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Release()

	start := time.Now()
	timeout := 250 * time.Millisecond
	second, err := Acquire(context.Background(), path, "pid 456: imgbase base --remove X-1-0", timeout)
	if err == nil {
		second.Release()
		t.Fatal("second Acquire succeeded while the first held the lock")
	}
	if waited := time.Since(start); waited < timeout {
		t.Errorf("gave up after %v, before the %v timeout", waited, timeout)
	}
	var be *BusyError
	if !errors.As(err, &be) || be.Holder != "pid 123: imgbase layer --add" || be.Path != path {
		t.Fatalf("error %#v, want a *BusyError naming the holder", err)
	}
	want := "cannot lock " + path + ": another imgbase is running (pid 123: imgbase layer --add); wait for it to finish"
	if err.Error() != want {
		t.Errorf("message\n %q\nwant\n %q", err, want)
	}
	// The loser must not have disturbed the holder's line.
	if got := readHolder(path); got != "pid 123: imgbase layer --add" {
		t.Errorf("holder line after the failed attempt = %q", got)
	}
}

func TestTryAcquireDoesNotWait(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	first, err := TryAcquire(path, "first")
	if err != nil {
		t.Fatal(err)
	}
	defer first.Release()
	var be *BusyError
	if _, err := TryAcquire(path, "second"); !errors.As(err, &be) || be.Holder != "first" {
		t.Fatalf("TryAcquire on a held lock = %v", err)
	}
}

func TestReleaseLetsNextIn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	first, err := TryAcquire(path, "first")
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	if err := first.Release(); err != nil {
		t.Errorf("second Release = %v", err)
	}
	if got, err := os.ReadFile(path); err != nil || len(got) != 0 {
		t.Errorf("after Release the file holds %q, %v; want it present and empty", got, err)
	}
	second, err := TryAcquire(path, "second\nwith a newline")
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	defer second.Release()
	if got, _ := os.ReadFile(path); string(got) != "second with a newline\n" {
		t.Errorf("file holds %q", got)
	}
	if second.Path() != path {
		t.Errorf("Path = %q", second.Path())
	}
}

func TestWaitsForRelease(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	first, err := TryAcquire(path, "first")
	if err != nil {
		t.Fatal(err)
	}
	releasing := make(chan struct{})
	go func() {
		time.Sleep(300 * time.Millisecond)
		close(releasing) // before Release: the second may get in at once
		first.Release()
	}()
	second, err := Acquire(context.Background(), path, "second", time.Minute)
	if err != nil {
		t.Fatalf("Acquire while waiting for release: %v", err)
	}
	defer second.Release()
	select {
	case <-releasing:
	default:
		t.Fatal("second got the lock before the first released it")
	}
	if got := readHolder(path); got != "second" {
		t.Errorf("holder = %q", got)
	}
}

func TestContextEndsWait(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	first, err := TryAcquire(path, "first")
	if err != nil {
		t.Fatal(err)
	}
	defer first.Release()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(200 * time.Millisecond); cancel() }()
	_, err = Acquire(ctx, path, "second", time.Hour)
	if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "cannot lock "+path) {
		t.Fatalf("Acquire with a cancelled context = %v", err)
	}
}

func TestUnknownHolder(t *testing.T) {
	err := &BusyError{Path: "/run/imgbase.lock"}
	if !strings.Contains(err.Error(), "(holder unknown)") {
		t.Errorf("%q", err)
	}
}

func TestCannotOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing-dir", "lock")
	if _, err := TryAcquire(path, "x"); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("TryAcquire in a missing directory = %v", err)
	}
}

func TestHolder(t *testing.T) {
	want := fmt.Sprintf("pid %d: imgbase layer --add", os.Getpid())
	if got := Holder([]string{"imgbase", "layer", "--add"}); got != want {
		t.Errorf("Holder = %q, want %q", got, want)
	}
}

// TestOtherProcess holds the lock in a child process: the parent sees the
// child's holder line, and the lock goes away when the child is killed
// without releasing it.
func TestOtherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldLock$")
	cmd.Env = append(os.Environ(), "LOCK_HELPER_PATH="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe() // keeps the child alive until killed
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "locked\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child said %q, %v", line, err)
	}

	_, err = TryAcquire(path, "parent")
	var be *BusyError
	want := fmt.Sprintf("pid %d: child", cmd.Process.Pid)
	if !errors.As(err, &be) || be.Holder != want {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("TryAcquire while the child holds the lock = %v, want holder %q", err, want)
	}

	cmd.Process.Kill()
	cmd.Wait()
	l, err := Acquire(context.Background(), path, "parent", 10*time.Second)
	if err != nil {
		t.Fatalf("lock still held after its holder died: %v", err)
	}
	l.Release()
}

func TestHelperHoldLock(t *testing.T) {
	path := os.Getenv("LOCK_HELPER_PATH")
	if path == "" {
		t.Skip("only run as TestOtherProcess's child")
	}
	if _, err := TryAcquire(path, fmt.Sprintf("pid %d: child", os.Getpid())); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Println("locked")
	bufio.NewReader(os.Stdin).ReadString('\n') // until killed
	os.Exit(0)
}
