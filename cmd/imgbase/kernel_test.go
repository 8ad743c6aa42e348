package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The kernel hooks run 'boot --sync-kernel' on every host with the
// package: one not booted from a layer must be left alone, quietly.
func TestSyncKernelNotOnALayer(t *testing.T) {
	c := newCLI(t, "running", 5)
	code, stdout, stderr := c.run(t, "boot --sync-kernel=6.1.0-13-amd64")
	if code != 0 || !strings.Contains(stdout, "not booted from an imgbase layer") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if len(c.rec.Lines()) != 0 {
		t.Errorf("ran %v", c.rec.Lines())
	}
}

func TestSyncKernelFollowsRebuiltInitramfs(t *testing.T) {
	c := newCLI(t, "running", 5)
	root := c.env.Root
	for name, content := range map[string]string{
		"boot/loader/entries/Base-1-0_1.conf":       "title Base-1-0 (Base-1-0+1)\nversion 6.1.0-13-amd64\nlinux /Base-1-0+1/vmlinuz-6.1.0-13-amd64\ninitrd /Base-1-0+1/initrd.img-6.1.0-13-amd64\noptions root=/dev/HostVG/Base-1-0+1 rd.lvm.lv=HostVG/Base-1-0+1 img.bootid=Base-1-0+1 ro\n",
		"boot/Base-1-0+1/vmlinuz-6.1.0-13-amd64":    "kernel",
		"boot/Base-1-0+1/initrd.img-6.1.0-13-amd64": "initrd",
		"boot/initrd.img-6.1.0-13-amd64":            "initrd with marker",
		"lib/modules/6.1.0-13-amd64/modules.order":  "",
		"proc/cmdline": "root=/dev/HostVG/Base-1-0+1 img.bootid=Base-1-0+1 ro\n",
	} {
		os.MkdirAll(filepath.Dir(filepath.Join(root, name)), 0o755)
		os.WriteFile(filepath.Join(root, name), []byte(content), 0o644)
	}
	code, stdout, stderr := c.run(t, "boot --sync-kernel=6.1.0-13-amd64")
	if code != 0 || !strings.Contains(stdout, "Base-1-0+1 boots kernel 6.1.0-13-amd64") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if data, _ := os.ReadFile(filepath.Join(root, "boot/Base-1-0+1/initrd.img-6.1.0-13-amd64")); string(data) != "initrd with marker" {
		t.Errorf("the layer's initramfs: %q", data)
	}
	// Without a version (by hand), nothing left to do.
	code, stdout, _ = c.run(t, "boot --sync-kernel")
	if code != 0 || !strings.Contains(stdout, "keeps booting kernel 6.1.0-13-amd64") {
		t.Errorf("exit %d, stdout %q", code, stdout)
	}
	// A removed kernel the entry does not boot.
	code, stdout, _ = c.run(t, "boot --kernel-removed 6.1.0-9-amd64")
	if code != 0 || !strings.Contains(stdout, "not the removed 6.1.0-9-amd64") {
		t.Errorf("exit %d, stdout %q", code, stdout)
	}
	if code, _, _ := c.run(t, "boot --sync-kernel=../x"); code == 0 {
		t.Error("a version with a slash was taken")
	}
}
