package grubcfg

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// GRUB's own parser (grub-script-check, package grub-common) must accept
// everything imgbase writes, when it is installed.
func TestGrubScriptCheck(t *testing.T) {
	check, err := exec.LookPath("grub-script-check")
	if err != nil {
		t.Skip("grub-script-check not installed (apt-get install grub-common)")
	}
	menu, err := os.ReadFile(filepath.Join("testdata", "menu.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	wired, _ := Wire([]byte("load_env\nset default=\"${saved_entry}\"\n"))
	for name, data := range map[string][]byte{
		"menu":   menu,
		"blscfg": Render(Fragment{}),
		"wired":  wired,
		"broken": []byte("if [ -n x ]; then\n"),
	} {
		p := filepath.Join(t.TempDir(), name+".cfg")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(check, p).CombinedOutput()
		if (err == nil) != (name != "broken") {
			t.Errorf("grub-script-check %s: %v\n%s", name, err, out)
		}
	}
}
