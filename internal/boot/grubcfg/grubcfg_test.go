package grubcfg

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("%s differs:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestRenderMenu(t *testing.T) {
	f := Fragment{
		BootUUID: "0b6e4b6f-64d6-4d0b-9f3c-0c3f0d1c2a11",
		FSModule: "ext2",
		Menu: []MenuEntry{
			{
				ID: "Base-1-0+1", Title: "Base-1-0 (Base-1-0+1)",
				Linux:  "/Base-1-0+1/vmlinuz-6.1.0-18-amd64",
				Initrd: []string{"/Base-1-0+1/initrd.img-6.1.0-18-amd64"},
				Args:   []string{"root=/dev/HostVG/Base-1-0+1", "rd.lvm.lv=HostVG/Base-1-0+1", "img.bootid=Base-1-0+1", "ro", "console=ttyS0,115200n8"},
			},
			{
				ID: "Base-2-0+1", Title: "Base-2-0 (Base-2-0+1)",
				Linux:  "/Base-2-0+1/vmlinuz-6.1.0-20-amd64",
				Initrd: []string{"/Base-2-0+1/initrd.img-6.1.0-20-amd64"},
				Args:   []string{"root=/dev/HostVG/Base-2-0+1", "rd.lvm.lv=HostVG/Base-2-0+1", "img.bootid=Base-2-0+1", `acpi_osi="!Windows 2012"`},
			},
		},
	}
	golden(t, "menu.cfg", Render(f))
}

func TestRenderBLSOnlyScript(t *testing.T) {
	got := string(Render(Fragment{BootUUID: "x"}))
	if strings.Contains(got, "menuentry") || strings.Contains(got, "search") || !strings.Contains(got, Script) {
		t.Fatalf("blscfg fragment:\n%s", got)
	}
}

func TestWireIdempotent(t *testing.T) {
	cfg := []byte("serial --unit=0 --speed=115200\nterminal_input serial console\nload_env\nset default=\"${saved_entry}\"\nset timeout=3")
	once, changed := Wire(cfg)
	if !changed || !Wired(once) || !strings.HasPrefix(string(once), string(cfg)+"\n") {
		t.Fatalf("first wire:\n%s", once)
	}
	twice, changed := Wire(once)
	if changed || string(twice) != string(once) {
		t.Fatalf("second wire changed grub.cfg:\n%s", twice)
	}
	// An old block from an earlier version is replaced in place.
	old := strings.Replace(string(once), "source", "configfile", 1) + "menuentry x {\n}\n"
	fixed, changed := Wire([]byte(old))
	if !changed || !Wired(fixed) || strings.Count(string(fixed), beginMarker) != 1 || !strings.HasSuffix(string(fixed), "menuentry x {\n}\n") {
		t.Fatalf("rewire:\n%s", fixed)
	}
}

func TestHasBLS(t *testing.T) {
	if !HasBLS([]byte("insmod blscfg\n  blscfg\n")) || HasBLS([]byte("insmod blscfg\n# blscfg\n")) {
		t.Fatal("HasBLS")
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"Base-1-0+1":             "Base-1-0+1",
		"a b":                    "'a b'",
		"it's":                   `'it'\''s'`,
		"${x}":                   "'${x}'",
		"":                       "''",
		"console=ttyS0,115200n8": "console=ttyS0,115200n8",
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}
