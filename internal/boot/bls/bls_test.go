package bls

import (
	"reflect"
	"strings"
	"testing"
)

const fedora = `title Fedora Linux (6.5.6-300.fc39.x86_64) 39 (Server Edition)
version 6.5.6-300.fc39.x86_64
linux /vmlinuz-6.5.6-300.fc39.x86_64
initrd /initramfs-6.5.6-300.fc39.x86_64.img
options root=/dev/mapper/fedora-root ro rd.lvm.lv=fedora/root
grub_users $grub_users
grub_arg --unrestricted
grub_class fedora
`

func TestParseFedora(t *testing.T) {
	e, err := Parse([]byte(fedora))
	if err != nil {
		t.Fatal(err)
	}
	want := Entry{
		Title:   "Fedora Linux (6.5.6-300.fc39.x86_64) 39 (Server Edition)",
		Version: "6.5.6-300.fc39.x86_64",
		Linux:   "/vmlinuz-6.5.6-300.fc39.x86_64",
		Initrd:  []string{"/initramfs-6.5.6-300.fc39.x86_64.img"},
		Options: "root=/dev/mapper/fedora-root ro rd.lvm.lv=fedora/root",
		Extra:   []Field{{"grub_users", "$grub_users"}, {"grub_arg", "--unrestricted"}, {"grub_class", "fedora"}},
	}
	if !reflect.DeepEqual(e, want) {
		t.Fatalf("got %#v", e)
	}
	out, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != fedora {
		t.Fatalf("rewrite changed the entry:\n%s", out)
	}
	if e.Layer() != "" {
		t.Fatalf("foreign entry has layer %q", e.Layer())
	}
}

func TestRoundTripLayerEntry(t *testing.T) {
	e := Entry{
		Title:   "Base-1-0 (Base-1-0+1)",
		Version: "6.1.0-18-amd64",
		Linux:   "/Base-1-0+1/vmlinuz-6.1.0-18-amd64",
		Initrd:  []string{"/Base-1-0+1/intel-ucode.img", "/Base-1-0+1/initrd.img-6.1.0-18-amd64"},
		Options: "root=/dev/HostVG/Base-1-0+1 rd.lvm.lv=HostVG/Base-1-0+1 img.bootid=Base-1-0+1 console=ttyS0,115200n8",
	}
	out, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, e) {
		t.Fatalf("round trip:\n%#v\n%#v", got, e)
	}
	if got.Layer() != "Base-1-0+1" {
		t.Fatalf("layer %q", got.Layer())
	}
}

func TestOptionsLinesJoined(t *testing.T) {
	e, err := Parse([]byte("linux /k\noptions a=1\n# comment\noptions\t b c\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	if e.Options != "a=1 b c" {
		t.Fatalf("options %q", e.Options)
	}
}

func TestFileNameNeverBootCounter(t *testing.T) {
	for _, layer := range []string{"Base-1-0+1", "Base-1.0-0+12", "a+b+3"} {
		n := FileName(layer)
		stem := strings.TrimSuffix(n, ".conf")
		if i := strings.LastIndexByte(stem, '+'); i >= 0 {
			t.Errorf("%s -> %s still has a '+'", layer, n)
		}
	}
	if FileName("Base-1-0+1") != "Base-1-0_1.conf" {
		t.Fatal(FileName("Base-1-0+1"))
	}
}

func TestMarshalRejectsLineBreak(t *testing.T) {
	if _, err := (Entry{Linux: "/k", Title: "a\nlinux /evil"}).Marshal(); err == nil {
		t.Fatal("line break in a value was written")
	}
	if _, err := (Entry{}).Marshal(); err == nil {
		t.Fatal("entry without linux was written")
	}
}

func TestCheckLayerName(t *testing.T) {
	for _, bad := range []string{"", "..", "a/b", "a b", "x'y", "$x"} {
		if CheckLayerName(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if err := CheckLayerName("Base-1.0-0+1"); err != nil {
		t.Error(err)
	}
}

func FuzzParseBLS(f *testing.F) {
	f.Add([]byte(fedora))
	f.Add([]byte("linux /a\ninitrd /b\ninitrd /c\noptions x\noptions y\n"))
	f.Add([]byte("title  spaced \t\nlinux\t/k\nfoo\n#c\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Parse(data)
		if err != nil {
			return
		}
		out, err := e.Marshal()
		if err != nil {
			t.Fatalf("cannot write a parsed entry: %v", err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("cannot reparse: %v\n%q", err, out)
		}
		if !reflect.DeepEqual(again, e) {
			t.Fatalf("round trip:\n%#v\n%#v", again, e)
		}
	})
}
