package boot

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/imgbase/imgbase/internal/boot/grubenv"
)

// TestRealGrubBootsTheTrial lays out /boot with the Manager, copies it into
// an ext4 image and starts real GRUB on it (grub-emu): the try script picks
// the trial layer, the fragment's search finds /boot by UUID, the kernel
// and initramfs paths exist, and save_env's write is what MarkGood reads.
func TestRealGrubBootsTheTrial(t *testing.T) {
	var tools []string
	for _, tool := range []string{"grub-emu", "mke2fs", "debugfs"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("%s not installed (apt-get install grub-emu e2fsprogs)", tool)
		}
		tools = append(tools, p)
	}
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
	probe := "echo \"IMGBASE-DEFAULT=[${default}]\"\n"
	list, _ := f.m.List()
	for _, e := range list {
		for _, p := range e.files() {
			probe += "if [ -f " + p + " ]; then echo \"HAVE " + p + "\"; fi\n"
		}
	}
	cfg = append([]byte("set root=host\n"), cfg...)
	os.WriteFile(cfgPath, append(cfg, probe+"reboot\n"...), 0o644)

	boot := func() (string, string) {
		img := filepath.Join(t.TempDir(), "boot.img")
		mustRun(t, tools[1], "-q", "-F", "-t", "ext4", "-U", testUUID, "-d", f.boot, img, "16M")
		devmap := filepath.Join(t.TempDir(), "device.map")
		os.WriteFile(devmap, []byte("(hd0) "+img+"\n"), 0o644)
		out := mustRun(t, tools[0], "-m", devmap, "-r", "hd0", "-d", "/grub")
		env := mustRun(t, tools[2], "-R", "cat /grub/grubenv", img)
		if len(env) != grubenv.Size {
			t.Fatalf("GRUB left %d bytes of grubenv", len(env))
		}
		// What save_env wrote on the disk is what the booted system sees.
		os.WriteFile(filepath.Join(f.boot, "grub", "grubenv"), []byte(env), 0o644)
		m := regexp.MustCompile(`IMGBASE-DEFAULT=\[([^\]]*)\]`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no default printed:\n%s", out)
		}
		return m[1], out
	}

	// First let GRUB run its menu on a copy: the default must resolve
	// to the trial layer's menuentry by --id. grub-emu cannot load Linux
	// and then waits for a key, so it is stopped after a few seconds.
	menuCfg := append(append([]byte(nil), cfg...), probe...)
	os.WriteFile(cfgPath, menuCfg, 0o644)
	img := filepath.Join(t.TempDir(), "boot.img")
	mustRun(t, tools[1], "-q", "-F", "-t", "ext4", "-U", testUUID, "-d", f.boot, img, "16M")
	devmap := filepath.Join(t.TempDir(), "device.map")
	os.WriteFile(devmap, []byte("(hd0) "+img+"\n"), 0o644)
	tctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	var menuOut bytes.Buffer
	cmd := exec.CommandContext(tctx, tools[0], "-m", devmap, "-r", "hd0", "-d", "/grub")
	cmd.Stdout = &menuOut
	cmd.Run()
	cancel()
	if !strings.Contains(menuOut.String(), "Booting `Base-2-0 (Base-2-0+1)'") {
		t.Fatalf("GRUB's menu did not boot the trial entry:\n%q", menuOut.String())
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

func mustRun(t *testing.T, argv ...string) string {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).Output()
	if err != nil {
		t.Fatalf("%v: %v\n%s", argv, err, out)
	}
	return string(out)
}
