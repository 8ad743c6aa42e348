package migrate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReportSavedAsJSONAndText(t *testing.T) {
	f := newFixture(t)
	writeFile(t, filepath.Join(f.running, "etc/hostname"), "mine\n", 0o644)
	writeFile(t, filepath.Join(f.newL, "etc/hostname"), "theirs\n", 0o644)
	writeFile(t, filepath.Join(f.running, "etc/conf.d/b"), "b=2\n", 0o644)
	writeFile(t, filepath.Join(f.running, "etc/added"), "x\n", 0o644)
	mustRemove(t, filepath.Join(f.running, "etc/motd"))
	writeFile(t, filepath.Join(f.newL, "etc/ssh/sshd_config"), "v2\n", 0o644)
	rep := f.run()

	dir := filepath.Join(f.newL, "var/lib/imgbase")
	if err := rep.Save(dir); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(dir, ReportFile))), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Conflicts) != 1 || back.Conflicts[0].Path != "/etc/hostname" || back.Conflicts[0].ImageCopy != "/etc/hostname.imgnew" {
		t.Errorf("conflicts = %+v", back.Conflicts)
	}
	if strings.Join(back.Kept, ",") != "/etc/conf.d/b" || strings.Join(back.Added, ",") != "/etc/added" ||
		strings.Join(back.Deleted, ",") != "/etc/motd" || strings.Join(back.Taken, ",") != "/etc/ssh/sshd_config" {
		t.Errorf("saved report = %+v", back)
	}
	if back.Finished.IsZero() {
		t.Error("no finish time")
	}
	txt := readFile(t, filepath.Join(dir, "migrate-report.txt"))
	for _, want := range []string{"1 taken from the new image, 1 kept, 1 added, 1 deleted, 1 conflicts",
		"/etc/hostname: changed by the admin and by the new image: kept the admin's; the new image's is /etc/hostname.imgnew",
		"  /etc/conf.d/b\n", "  /etc/added\n", "  /etc/motd\n", "  /etc/ssh/sshd_config\n"} {
		if !strings.Contains(txt, want) {
			t.Errorf("text report lacks %q:\n%s", want, txt)
		}
	}
	if txt != rep.Text() {
		t.Error("saved text differs from Text()")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("report directory holds %d entries (temporary files left?)", len(entries))
	}
}

func TestEmptyReportJSONHasLists(t *testing.T) {
	b, err := (&Report{}).JSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"taken": []`, `"conflicts": []`, `"accounts": []`, `"remapped": []`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON lacks %s:\n%s", key, b)
		}
	}
}
