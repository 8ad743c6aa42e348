// Package grubemu runs real GRUB (grub-emu) over a /boot tree, for the
// tests that check imgbase's GRUB script against GRUB itself rather than
// against imgbase's own model of it.
//
// The tree is copied into an ext4 image (GRUB reads it as (hd0)); the
// grubenv that save_env wrote is read back from the image, as the booted
// system would see it on /boot.
package grubemu

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// ProbeDefault is a grub.cfg line that prints the entry GRUB chose;
// Default reads it back from the output.
const ProbeDefault = "echo \"IMGBASE-DEFAULT=[${default}]\"\n"

var printedDefault = regexp.MustCompile(`IMGBASE-DEFAULT=\[([^\]]*)\]`)

// Emu holds the tools one run needs.
type Emu struct {
	emu, mke2fs, debugfs string
}

// Find returns the tools, or skips the test when one is missing.
func Find(t testing.TB) *Emu {
	t.Helper()
	var p [3]string
	for i, tool := range []string{"grub-emu", "mke2fs", "debugfs"} {
		var err error
		if p[i], err = exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt-get install grub-emu e2fsprogs)", tool)
		}
	}
	return &Emu{emu: p[0], mke2fs: p[1], debugfs: p[2]}
}

// Boot runs GRUB on an image of dir (the /boot tree, with grub.cfg in
// dir/grub; uuid, when set, is the filesystem's) until grub.cfg ends, which
// must end with "reboot". It returns what GRUB printed and the grubenv bytes
// it left on the disk.
func (e *Emu) Boot(t testing.TB, dir, uuid string) (out string, grubenv []byte) {
	t.Helper()
	img, devmap := e.image(t, dir, uuid)
	out = run(t, 30*time.Second, e.emu, "-m", devmap, "-r", "hd0", "-d", "/grub")
	return out, []byte(run(t, 30*time.Second, e.debugfs, "-R", "cat /grub/grubenv", img))
}

// Menu runs GRUB's menu on an image of dir for a few seconds and returns
// what it printed: grub-emu cannot load Linux, so after "Booting …" it
// waits for a key and is stopped.
func (e *Emu) Menu(t testing.TB, dir, uuid string) string {
	t.Helper()
	_, devmap := e.image(t, dir, uuid)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.emu, "-m", devmap, "-r", "hd0", "-d", "/grub")
	out, _ := cmd.Output() // killed on purpose
	return string(out)
}

// Default returns the entry ProbeDefault printed, failing the test when
// GRUB printed none.
func Default(t testing.TB, out string) string {
	t.Helper()
	m := printedDefault.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("grub-emu printed no default:\n%s", out)
	}
	return m[1]
}

func (e *Emu) image(t testing.TB, dir, uuid string) (img, devmap string) {
	t.Helper()
	tmp := t.TempDir()
	img = filepath.Join(tmp, "boot.img")
	argv := []string{e.mke2fs, "-q", "-F", "-t", "ext4", "-d", dir}
	if uuid != "" {
		argv = append(argv, "-U", uuid)
	}
	run(t, 30*time.Second, append(argv, img, "16M")...)
	devmap = filepath.Join(tmp, "device.map")
	if err := os.WriteFile(devmap, []byte("(hd0) "+img+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return img, devmap
}

func run(t testing.TB, timeout time.Duration, argv ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).Output()
	if err != nil {
		t.Fatalf("%v: %v\n%s", argv, err, out)
	}
	return string(out)
}
