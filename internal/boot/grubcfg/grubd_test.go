package grubcfg

import (
	"os/exec"
	"testing"
)

// update-grub rewrites grub.cfg from /etc/grub.d: the snippet the package
// ships there must print the very block Wire writes, or the next Setup
// would append a second one, and Wired would say the menu is unwired.
func TestGrubDSnippetPrintsTheBlock(t *testing.T) {
	out, err := exec.Command("sh", "../hooks/15_imgbase").Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != Block {
		t.Fatalf("15_imgbase prints:\n%s\nwant:\n%s", out, Block)
	}
	// grub-mkconfig wraps each snippet in comments of its own.
	cfg := "### BEGIN /etc/grub.d/00_header ###\nset default=\"0\"\n### END /etc/grub.d/00_header ###\n\n" +
		"### BEGIN /etc/grub.d/15_imgbase ###\n" + string(out) + "### END /etc/grub.d/15_imgbase ###\n"
	if !Wired([]byte(cfg)) {
		t.Error("a grub.cfg made by update-grub is not Wired")
	}
	if again, changed := Wire([]byte(cfg)); changed || string(again) != cfg {
		t.Errorf("Wire changes update-grub's grub.cfg:\n%s", again)
	}
}
