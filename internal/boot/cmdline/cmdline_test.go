package cmdline

import (
	"reflect"
	"testing"
)

func TestCarry(t *testing.T) {
	running := `BOOT_IMAGE=/Base-1-0+1/vmlinuz-6.1.0-18-amd64 root=/dev/HostVG/Base-1-0+1 ro rd.lvm.lv=HostVG/Base-1-0+1 rd.lvm.lv=HostVG/swap img.bootid=Base-1-0+1 console=ttyS0,115200n8 quiet acpi_osi="!Windows 2012" initrd=\initrd.img`
	got := Carry(running)
	want := []string{"ro", "console=ttyS0,115200n8", "quiet", `acpi_osi="!Windows 2012"`}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q", got)
	}
}

func TestLayerOptions(t *testing.T) {
	got := Layer("HostVG", "Base-2-0+1", "Base-2-0+1",
		[]string{"ro", "console=ttyS0,115200n8", "panic=0"},
		[]string{"panic=10", "root=/dev/sda1"})
	want := "root=/dev/HostVG/Base-2-0+1 rd.lvm.lv=HostVG/Base-2-0+1 img.bootid=Base-2-0+1 ro console=ttyS0,115200n8 panic=10"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestSplitQuotes(t *testing.T) {
	got := Split(" a  b=\"x y\" \tc\n")
	if !reflect.DeepEqual(got, []string{"a", `b="x y"`, "c"}) {
		t.Fatalf("%q", got)
	}
	if v, ok := Value(got, "b"); !ok || v != "x y" {
		t.Fatalf("value %q %v", v, ok)
	}
}
