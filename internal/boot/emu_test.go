package boot

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbase/imgbase/internal/boot/grubemu"
	"github.com/imgbase/imgbase/internal/boot/grubenv"
)

// TestRealGrubBootsTheTrial lays out /boot with the Manager, copies it into
// an ext4 image and starts real GRUB on it (grub-emu): the try script picks
// the trial layer, the fragment's search finds /boot by UUID, the kernel
// and initramfs paths exist, and save_env's write is what MarkGood reads.
func TestRealGrubBootsTheTrial(t *testing.T) {
	emu := grubemu.Find(t)
	ctx := context.Background()
	// The test image's grub.cfg minus the serial lines grub-emu lacks.
	f := newFixture(t, map[string]string{"grub/grub.cfg": "set timeout=0\nload_env\nset default=\"${saved_entry}\"\n"})
	if err := f.m.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	f.add("Base-1-0+1", false)
	if err := f.m.SetDefault(ctx, "Base-1-0+1"); err != nil {
		t.Fatal(err)
	}
	f.add("Base-2-0+1", true)

	// Probe lines after imgbase's block: where GRUB's root went, which
	// files it sees, what it boots. root starts elsewhere so that only
	// the fragment's search can bring it to /boot.
	cfgPath := filepath.Join(f.boot, "grub", "grub.cfg")
	cfg, _ := os.ReadFile(cfgPath)
	probe := grubemu.ProbeDefault
	list, _ := f.m.List()
	for _, e := range list {
		for _, p := range e.files() {
			probe += "if [ -f " + p + " ]; then echo \"HAVE " + p + "\"; fi\n"
		}
	}
	cfg = append([]byte("set root=host\n"), cfg...)
	os.WriteFile(cfgPath, append(cfg, probe+"reboot\n"...), 0o644)

	boot := func() (string, string) {
		out, env := emu.Boot(t, f.boot, testUUID)
		if len(env) != grubenv.Size {
			t.Fatalf("GRUB left %d bytes of grubenv", len(env))
		}
		// What save_env wrote on the disk is what the booted system sees.
		os.WriteFile(filepath.Join(f.boot, "grub", "grubenv"), env, 0o644)
		return grubemu.Default(t, out), out
	}

	// First let GRUB run its menu on a copy: the default must resolve
	// to the trial layer's menuentry by --id. grub-emu cannot load Linux
	// and then waits for a key, so it is stopped after a few seconds.
	menuCfg := append(append([]byte(nil), cfg...), probe...)
	os.WriteFile(cfgPath, menuCfg, 0o644)
	menuOut := emu.Menu(t, f.boot, testUUID)
	if !strings.Contains(menuOut, "Booting `Base-2-0 (Base-2-0+1)'") {
		t.Fatalf("GRUB's menu did not boot the trial entry:\n%q", menuOut)
	}
	os.WriteFile(cfgPath, append(cfg, probe+"reboot\n"...), 0o644)

	entry, out := boot()
	if entry != "Base-2-0+1" {
		t.Fatalf("GRUB booted %q, want the trial layer", entry)
	}
	for _, e := range list {
		for _, p := range e.files() {
			if !strings.Contains(out, "HAVE "+p) {
				t.Errorf("GRUB does not see %s:\n%s", p, out)
			}
		}
	}
	if st := f.env().Get("boot_status"); st != "trying" {
		t.Fatalf("boot_status after GRUB: %q", st)
	}
	f.booted(entry, "b1")
	if ev, err := f.m.MarkGood(ctx); err != nil || ev.Kind != EventGood {
		t.Fatalf("mark good: %+v %v", ev, err)
	}
	if entry, _ = boot(); entry != "Base-2-0+1" {
		t.Fatalf("after the good mark GRUB booted %q", entry)
	}
	// A one-shot, then back to the default.
	if err := f.m.SetNext(ctx, "Base-1-0+1"); err != nil {
		t.Fatal(err)
	}
	if entry, _ = boot(); entry != "Base-1-0+1" {
		t.Fatalf("next boot: %q", entry)
	}
	if entry, _ = boot(); entry != "Base-2-0+1" {
		t.Fatalf("after the one-shot: %q", entry)
	}
}
