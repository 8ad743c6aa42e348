//go:build vm

package vm

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The suite's wall time is that of its busiest guest slot. Go starts
// parallel tests in no fixed order, and a long test started last keeps
// one slot busy while the other idles: Parallel hands the slots out in a
// fixed order instead, longest test first (a longest-processing-time
// schedule).

// order is the order in which tests get a slot: by their time beside
// another TCG guest (seconds in comments, from CI's runs; ~ estimated from
// the parts measured), longest first, except
// that a test on the plain host image comes second: the first test
// prepares the initialised host (BootLayered, a few minutes) and every
// test that needs it waits for that, so the other slot runs one that does
// not. A test not listed comes after these.
var order = []string{
	"TestPowerCut",                  // 3050 in check-long; skips at once in make test
	"TestDracutHost",                // 2230 in check-long (five boots, a kernel postinst); skipped in make test
	"TestUEFISystemdBoot",           // 4 × 1000–2100 in check-long (a guest per layout); skipped in make test
	"TestBootIntoLayer",             // ~700 in check-long (the root's one-shot boot, a kernel change in a layer); skipped in make test
	"TestUpdate",                    // ~720 (a delta update, its trial boot)
	"TestXFSRoot",                   // ~500, plain host image
	"TestBootLayers",                // ~690 (four reboots, one of them two boots)
	"TestUpdateFromOCI",             // ~650 (the pull of v2 from the guest's registry, its boot)
	"TestDeltaUpdate",               // ~600 (v1→v2 by delta and in full, compared; v2's boot)
	"TestPackagedUpdate",            // ~500
	"TestImageBaseLayerAndRollback", // ~400
	"TestUpdateXFS",                 // ~390
	"TestBaseAddSquashfs",           // ~250
	"TestSeedInitFrom",              // ~190
	"TestSeedInitImage",             // ~170
}

// EnvSlots overrides the number of guests run at once (default 2: each
// TCG guest keeps a core busy).
const EnvSlots = "IMGBASE_VM_SLOTS"

// settle is how long the first test waits for the others to arrive, so
// that the first in order, not the first to arrive, gets a slot.
const settle = 2 * time.Second

type scheduler struct {
	mu      sync.Mutex
	cond    *sync.Cond
	slots   int
	running int
	waiting map[string]int // rank in order
	open    bool           // settle has passed
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
// slot is free and no test before it in order waits for one. It needs
// `go test -parallel` at least as high as the number of VM tests (vm.mk
// sets it).
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
	rank := slices.Index(order, name)
	if top, _, ok := strings.Cut(name, "/"); ok && rank < 0 {
		rank = slices.Index(order, top) // a subtest ranks as its test
	}
	if rank < 0 {
		rank = len(order)
	}
	s.waiting[name] = rank
	for !s.open || s.running >= s.slots || !s.first(name) {
		s.cond.Wait()
	}
	delete(s.waiting, name)
	s.running++
	// The next in order may have been woken while this one was still
	// waiting, and gone back to sleep: it is first now.
	s.cond.Broadcast()
}

// first reports whether name comes first of the waiting tests (ties by
// name).
func (s *scheduler) first(name string) bool {
	r := s.waiting[name]
	for n, o := range s.waiting {
		if o < r || (o == r && n < name) {
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
