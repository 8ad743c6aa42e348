package boot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/imgbase/imgbase/internal/boot/grubcfg"
)

var errPowerLoss = errors.New("power lost")

// crashingFiles loses power after a number of operations: that operation
// and every later one fail until power is restored. Each operation is
// atomic (Disk's contract), so a crash lands between two of them.
type crashingFiles struct {
	next Files
	left int // operations until the crash; -1: never
	ops  int
}

func (c *crashingFiles) op() error {
	if c.left == 0 {
		return errPowerLoss
	}
	if c.left > 0 {
		c.left--
	}
	c.ops++
	return nil
}

func (c *crashingFiles) WriteFile(p string, d []byte, m os.FileMode) error {
	if err := c.op(); err != nil {
		return err
	}
	return c.next.WriteFile(p, d, m)
}

func (c *crashingFiles) CopyFile(dst, src string) error {
	if err := c.op(); err != nil {
		return err
	}
	return c.next.CopyFile(dst, src)
}

func (c *crashingFiles) MkdirAll(d string) error {
	if err := c.op(); err != nil {
		return err
	}
	return c.next.MkdirAll(d)
}

func (c *crashingFiles) Remove(p string) error {
	if err := c.op(); err != nil {
		return err
	}
	return c.next.Remove(p)
}

var menuID = regexp.MustCompile(`(?m)^menuentry .* --id (\S+) \{$`)

// machine is a host with GRUB (modelled by grubcfg.Select, which
// TestScriptMatchesModel checks against the real script), a kernel that
// panics for broken layers, and imgbase-boot-success.service.
type machine struct {
	t      *testing.T
	f      *fixture
	files  *crashingFiles
	broken string
	boots  []string // entries GRUB started, in order
	n      int
}

// powerOn boots once; a power loss anywhere ends the boot early.
func (mc *machine) powerOn() {
	t, f := mc.t, mc.f
	mc.n++
	env := f.env() // fails the test unless grubenv is 1024 readable bytes
	entry, saved := grubcfg.Select(env, false)
	if saved != nil {
		// GRUB's save_env: one in-place write of the block.
		data, err := saved.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if mc.files.WriteFile(filepath.Join(f.boot, "grub", "grubenv"), data, 0o644) != nil {
			return
		}
	}
	menu := f.read("grub/imgbase.cfg")
	found := false
	for _, m := range menuID.FindAllStringSubmatch(menu, -1) {
		found = found || m[1] == entry
	}
	if !found {
		t.Fatalf("boot %d: GRUB default %q is not in the menu:\n%s", mc.n, entry, menu)
	}
	list, _ := f.m.List()
	e, ok := find(list, entry)
	if !ok {
		t.Fatalf("boot %d: %q has no entry", mc.n, entry)
	}
	for _, p := range e.files() {
		if _, err := os.Stat(filepath.Join(f.boot, p)); err != nil {
			t.Fatalf("boot %d: %s: %v", mc.n, entry, err)
		}
	}
	mc.boots = append(mc.boots, entry)
	if entry == mc.broken {
		return // kernel panic, panic=N reboots
	}
	f.booted(entry, fmt.Sprintf("boot-%d", mc.n))
	if _, err := f.m.MarkGood(context.Background()); err != nil && !errors.Is(err, errPowerLoss) {
		t.Fatalf("boot %d: MarkGood: %v", mc.n, err)
	}
}

// runTrial adds L2 in try mode on a host running L1 and boots four times,
// losing power after crashAt file operations (-1: never). It returns the
// number of operations done.
func runTrial(t *testing.T, broken bool, crashAt int) int {
	const l1, l2 = "Base-1-0+1", "Base-2-0+1"
	ctx := context.Background()
	f := newFixture(t, map[string]string{"grub/grub.cfg": debianGrubCfg})
	if err := f.m.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	f.add(l1, false)
	if err := f.m.SetDefault(ctx, l1); err != nil {
		t.Fatal(err)
	}
	f.booted(l1, "boot-0")

	files := &crashingFiles{next: Disk{}, left: crashAt}
	f.m.Files = files
	mc := &machine{t: t, f: f, files: files}
	if broken {
		mc.broken = l2
	}
	restore := func() {
		if files.left == 0 {
			files.left = -1
		}
	}
	if _, err := f.m.AddLayer(ctx, f.layer(l2), true); err != nil && !errors.Is(err, errPowerLoss) {
		t.Fatal(err)
	}
	restore()
	for i := 0; i < 4; i++ {
		mc.powerOn()
		restore()
	}

	// The trial is settled and the default boots from now on.
	env := f.env()
	if st := env.Get(grubcfg.BootStatus); st != "" {
		t.Fatalf("crash at %d: boot_status %q after four boots (boots %v)", crashAt, st, mc.boots)
	}
	def, _ := f.m.Default()
	if last := mc.boots[len(mc.boots)-1]; last != def {
		t.Fatalf("crash at %d: last boot %s, default %s", crashAt, last, def)
	}
	if entry, saved := grubcfg.Select(env, false); entry != def || saved != nil {
		t.Fatalf("crash at %d: a further boot would start %s and save %v", crashAt, entry, saved != nil)
	}
	tries := 0
	for _, b := range mc.boots {
		if b == l2 {
			tries++
		}
	}
	st, err := f.m.Status()
	if err != nil {
		t.Fatal(err)
	}
	lastL2 := ""
	for _, e := range st.Events {
		if e.Layer == l2 {
			lastL2 = e.Kind
		}
	}
	switch {
	case broken:
		// Never the default, tried at most once, and the boot after
		// the trial is the last good layer.
		if def != l1 || tries > 1 {
			t.Fatalf("crash at %d: broken layer: default %s, tried %d times (boots %v)", crashAt, def, tries, mc.boots)
		}
		if tries == 1 && lastL2 != EventFallback {
			t.Fatalf("crash at %d: fallback not recorded: %v", crashAt, st.Events)
		}
	case lastL2 == EventGood:
		if def != l2 {
			t.Fatalf("crash at %d: marked good but default %s", crashAt, def)
		}
	default:
		// The trial never completed (a crash interrupted it): the last
		// good layer stays, and the record says why.
		if def != l1 {
			t.Fatalf("crash at %d: default %s without a good mark (events %v)", crashAt, def, st.Events)
		}
		if tries > 0 && lastL2 != EventFallback {
			t.Fatalf("crash at %d: trial of a good layer interrupted but no fallback recorded: %v", crashAt, st.Events)
		}
	}
	if crashAt < 0 && !broken && (def != l2 || mc.boots[0] != l2) {
		t.Fatalf("without a crash a good layer must be tried first and become the default: %s %v", def, mc.boots)
	}

	t.Logf("crash at %d: boots %v, default %s, last event for the trial layer %q", crashAt, mc.boots, def, lastL2)

	// Whatever the crash left behind, recover makes the tree whole.
	f.m.Files = Disk{}
	layers := []Layer{f.layer(l1), f.layer(l2)}
	left, err := f.m.Recover(ctx, layers)
	if err != nil {
		t.Fatalf("crash at %d: recover: %v", crashAt, err)
	}
	if len(left) != 0 {
		t.Fatalf("crash at %d: after recover: %v", crashAt, left)
	}
	return files.ops
}

func TestCrashAtEveryPoint(t *testing.T) {
	for _, broken := range []bool{false, true} {
		n := runTrial(t, broken, -1)
		if n < 8 {
			t.Fatalf("only %d operations in a whole trial", n)
		}
		for k := 0; k <= n; k++ {
			t.Run(fmt.Sprintf("broken=%v/crash=%d", broken, k), func(t *testing.T) { runTrial(t, broken, k) })
		}
	}
}
