package grubcfg

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbase/imgbase/internal/boot/grubemu"
	"github.com/imgbase/imgbase/internal/boot/grubenv"
)

// TestScriptUnderGrubEmu runs the rendered fragment in real GRUB (grub-emu,
// package grub-emu) on an ext4 disk image, for every grubenv state the
// model distinguishes, and compares the entry GRUB chose and the grubenv it
// saved with Select. save_env really writes into the image, as on /boot.
func TestScriptUnderGrubEmu(t *testing.T) {
	emu := grubemu.Find(t)
	n := 0
	for _, next := range []string{"", "L2"} {
		for _, status := range []string{"", StatusTry, StatusTrying, StatusFailed} {
			for _, try := range []string{"", "L3"} {
				for _, once := range []bool{false, true} {
					env := grubenv.New()
					env.Set(SavedEntry, "L1")
					env.Set(NextEntry, next)
					env.Set(TryEntry, try)
					env.Set(BootStatus, status)
					name := fmt.Sprintf("next=%q status=%q try=%q once=%v", next, status, try, once)
					wantEntry, wantSaved := Select(env.Clone(), once)
					if wantSaved == nil {
						wantSaved = env
					}
					if once && wantEntry == "" {
						wantEntry = "L1" // the header's choice stands
					}
					gotEntry, gotEnv := runEmu(t, emu, env, once)
					if gotEntry != wantEntry {
						t.Errorf("%s: GRUB chose %q, model %q", name, gotEntry, wantEntry)
					}
					if !gotEnv.Equal(wantSaved) {
						t.Errorf("%s: GRUB left grubenv %v, model %v", name, dump(gotEnv), dump(wantSaved))
					}
					n++
				}
			}
		}
	}
	t.Logf("%d grubenv states run under grub-emu", n)
}

func dump(e *grubenv.Env) string {
	var s []string
	for _, k := range e.Keys() {
		s = append(s, k+"="+e.Get(k))
	}
	return strings.Join(s, " ")
}

func runEmu(t *testing.T, emu *grubemu.Emu, env *grubenv.Env, once bool) (string, *grubenv.Env) {
	t.Helper()
	root := t.TempDir()
	grubDir := filepath.Join(root, "grub")
	if err := os.MkdirAll(grubDir, 0o755); err != nil {
		t.Fatal(err)
	}
	head := "insmod ext2\nset root=(hd0)\nset prefix=(hd0)/grub\nload_env\nset default=\"${saved_entry}\"\n"
	if once {
		// What Debian's and Fedora's headers do with a next_entry.
		head += "set boot_once=true\n"
	}
	cfg, _ := Wire([]byte(head))
	cfg = append(cfg, grubemu.ProbeDefault+"reboot\n"...)
	data, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{"grub.cfg": cfg, FileName: Render(Fragment{}), "grubenv": data} {
		if err := os.WriteFile(filepath.Join(grubDir, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, raw := emu.Boot(t, root, "")
	if len(raw) != grubenv.Size {
		t.Fatalf("GRUB left %d bytes of grubenv", len(raw))
	}
	got, err := grubenv.Parse(raw)
	if err != nil {
		t.Fatalf("grubenv after GRUB: %v", err)
	}
	return grubemu.Default(t, out), got
}
