//go:build vm

package vm

import (
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// The suite's wall time is that of its busiest guest slot. Go starts
// parallel tests in no fixed order, and a long test started last keeps
// one slot busy while the other idles: Parallel hands the slots out
// longest test first instead (a classic longest-processing-time schedule).

// expected is each test's time in seconds in the last full run on two
// TCG guests, for ordering only; a test not listed counts as a minute.
var expected = map[string]int{
	"TestUpdateFromOCI":             880,
	"TestUpdate":                    740,
	"TestPowerCut":                  730,
	"TestBootLayers":                670,
	"TestDeltaUpdate":               620,
	"TestPackagedUpdate":            520,
	"TestImageBaseLayerAndRollback": 490,
	"TestXFSRoot":                   370,
	"TestBootIntoLayer":             270,
	"TestUpdateXFS":                 190,
	"TestBaseAddSquashfs":           150,
	"TestSeedInitImage":             130,
	"TestSeedInitFrom":              120,
}

// EnvSlots overrides the number of guests run at once (default 2: each
// TCG guest keeps a core busy).
const EnvSlots = "IMGBASE_VM_SLOTS"

// settle is how long the first test waits for the others to arrive, so
// that the longest, not the first to arrive, gets a slot.
const settle = 2 * time.Second

type scheduler struct {
	mu      sync.Mutex
	cond    *sync.Cond
	slots   int
	running int
	waiting map[string]int
	open    bool // settle has passed
}

var sched = newScheduler()

func newScheduler() *scheduler {
	s := &scheduler{slots: 2, waiting: map[string]int{}}
	if n, err := strconv.Atoi(os.Getenv(EnvSlots)); err == nil && n > 0 {
		s.slots = n
	}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// Parallel runs t beside the other VM tests (t.Parallel) once a guest
// slot is free and no longer test waits for one. The test needs `go test
// -parallel` at least as high as the number of VM tests (vm.mk sets it).
func Parallel(t *testing.T) {
	t.Parallel()
	sched.acquire(t.Name())
	t.Cleanup(sched.release)
}

func (s *scheduler) acquire(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.waiting) == 0 && !s.open {
		time.AfterFunc(settle, func() {
			s.mu.Lock()
			s.open = true
			s.mu.Unlock()
			s.cond.Broadcast()
		})
	}
	d, ok := expected[name]
	if !ok {
		d = 60
	}
	s.waiting[name] = d
	for !s.open || s.running >= s.slots || !s.longest(name) {
		s.cond.Wait()
	}
	delete(s.waiting, name)
	s.running++
}

// longest reports whether name is the longest waiting test (ties by name).
func (s *scheduler) longest(name string) bool {
	d := s.waiting[name]
	for n, o := range s.waiting {
		if o > d || (o == d && n < name) {
			return false
		}
	}
	return true
}

func (s *scheduler) release() {
	s.mu.Lock()
	s.running--
	s.mu.Unlock()
	s.cond.Broadcast()
}
