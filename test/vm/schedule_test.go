//go:build vm

package vm

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// Every slot is handed out without waiting for a release: three tests that
// arrive together get the two slots, first in order first, and the third
// gets one when a slot is released. (A test woken before the one ahead of
// it took its slot used to sleep until some test ended: make test ran one
// guest at a time until then.)
func TestSchedulerFillsEverySlot(t *testing.T) {
	s := newScheduler()
	s.slots = 2
	got := make(chan string, 3)
	for _, n := range []string{order[5], order[4], order[3]} {
		go func() { s.acquire(n); got <- n }()
	}
	var started []string
	timeout := time.After(settle + 10*time.Second)
	for len(started) < 2 {
		select {
		case n := <-got:
			started = append(started, n)
		case <-timeout:
			t.Fatalf("only %v got a slot of the two", started)
		}
	}
	if !slices.Contains(started, order[3]) || !slices.Contains(started, order[4]) {
		t.Errorf("the slots went to %v, want %s and %s", started, order[3], order[4])
	}
	select {
	case n := <-got:
		t.Fatalf("%s got a third slot", n)
	case <-time.After(time.Second):
	}
	s.release()
	select {
	case n := <-got:
		if n != order[5] {
			t.Errorf("the released slot went to %s, want %s", n, order[5])
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s got no slot after a release", order[5])
	}
}

func TestEndsAtReset(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		log  string
		want bool
	}{
		{"[  137.281414] kvm: exiting hardware virtualization\n[  137.306413] reboot: Restarting system\n[  137.306729] reboot: machine restart\n", true},
		{"[    3.1] ---[ end Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100 ]---\n\n", true},
		{"[  137.306729] reboot: machine restart\n\x1b[2J\x1b[01;01HBdsDxe: loading Boot0001 \"UEFI Misc Device\"\n", false},
		{"", false},
	} {
		p := filepath.Join(dir, "serial.log")
		os.WriteFile(p, []byte(c.log), 0o644)
		if got := endsAtReset(p); got != c.want {
			t.Errorf("endsAtReset(%q) = %v", c.log, got)
		}
	}
}
