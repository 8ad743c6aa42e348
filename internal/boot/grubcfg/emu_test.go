package grubcfg

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/imgbase/imgbase/internal/boot/grubenv"
)

// TestScriptUnderGrubEmu runs the rendered fragment in real GRUB (grub-emu,
// package grub-emu) on an ext4 disk image, for every grubenv state the
// model distinguishes, and compares the entry GRUB chose and the grubenv it
// saved with Select. save_env really writes into the image, as on /boot.
func TestScriptUnderGrubEmu(t *testing.T) {
	var tools []string
	for _, tool := range []string{"grub-emu", "mke2fs", "debugfs"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("%s not installed (apt-get install grub-emu e2fsprogs)", tool)
		}
		tools = append(tools, p)
	}
	emu, mke2fs, debugfs := tools[0], tools[1], tools[2]
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
					gotEntry, gotEnv := runEmu(t, emu, mke2fs, debugfs, env, once)
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

var emuDefault = regexp.MustCompile(`IMGBASE-DEFAULT=\[([^\]]*)\]`)

func runEmu(t *testing.T, emu, mke2fs, debugfs string, env *grubenv.Env, once bool) (string, *grubenv.Env) {
	t.Helper()
	dir := t.TempDir()
	grubDir := filepath.Join(dir, "root", "grub")
	if err := os.MkdirAll(grubDir, 0o755); err != nil {
		t.Fatal(err)
	}
	head := "insmod ext2\nset root=(hd0)\nset prefix=(hd0)/grub\nload_env\nset default=\"${saved_entry}\"\n"
	if once {
		// What Debian's and Fedora's headers do with a next_entry.
		head += "set boot_once=true\n"
	}
	cfg, _ := Wire([]byte(head))
	cfg = append(cfg, "echo \"IMGBASE-DEFAULT=[${default}]\"\nreboot\n"...)
	data, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{"grub.cfg": cfg, FileName: Render(Fragment{}), "grubenv": data} {
		if err := os.WriteFile(filepath.Join(grubDir, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(dir, "boot.img")
	run(t, mke2fs, "-q", "-F", "-t", "ext4", "-d", filepath.Join(dir, "root"), img, "8M")
	devmap := filepath.Join(dir, "device.map")
	os.WriteFile(devmap, []byte("(hd0) "+img+"\n"), 0o644)
	out := run(t, emu, "-m", devmap, "-r", "hd0", "-d", "/grub")
	m := emuDefault.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("grub-emu printed no default:\n%s", out)
	}
	raw := run(t, debugfs, "-R", "cat /grub/grubenv", img)
	got, err := grubenv.Parse([]byte(raw))
	if err != nil {
		t.Fatalf("grubenv after GRUB: %v", err)
	}
	if len(raw) != grubenv.Size {
		t.Fatalf("GRUB left %d bytes of grubenv", len(raw))
	}
	return m[1], got
}

func run(t *testing.T, argv ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %v\n%s", argv, err, out.String())
	}
	return out.String()
}
