package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/imgbase/imgbase/internal/command"
	"github.com/imgbase/imgbase/internal/command/commandtest"
	"github.com/imgbase/imgbase/internal/lock"
)

// runArgs is run with the arguments as given (empty ones included, as a
// shell passes them to __complete).
func (c *cli) runArgs(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	args = append([]string{"--config", filepath.Join(c.env.Root, "imgbased.conf"),
		"--lock-file", filepath.Join(c.env.Root, "lock")}, args...)
	code = run(context.Background(), args, &out, &errb, c.env)
	return code, out.String(), errb.String()
}

// complete returns what cobra's __complete offers, and its directive line.
func (c *cli) complete(t *testing.T, args ...string) (names []string, directive string) {
	t.Helper()
	code, out, stderr := c.runArgs(append([]string{"__complete"}, args...)...)
	if code != 0 {
		t.Fatalf("__complete %q: exit %d %s", args, code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	return lines[:len(lines)-1], lines[len(lines)-1]
}

func TestCompletesNamesFromTheLayout(t *testing.T) {
	c := newCLI(t, "running", 5)
	const allLayers = "Base-1-0+1 Base-1-0+2 Base-2-0+1"
	const allBases = "Base-1-0 Base-2-0 Base-10-0"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"layer", "--remove", ""}, allLayers},
		{[]string{"layer", "--remove", "Base-1-0+"}, "Base-1-0+1 Base-1-0+2"},
		{[]string{"layer", "--volume-path", "Base-2"}, "Base-2-0 Base-2-0+1"},
		{[]string{"layer", "--add", ""}, allBases + " " + allLayers},
		{[]string{"layer", "--add", "Base-1-0", ""}, ""}, // one argument only
		{[]string{"base", "--remove", ""}, allBases},
		{[]string{"base", "--pin", "Base-1"}, "Base-1-0 Base-10-0"},
		{[]string{"base", "--unpin", ""}, allBases},
		{[]string{"base", "--of-layer", ""}, allLayers},
		{[]string{"boot", "--set-default", ""}, allLayers},
		{[]string{"boot", "--next", "Base-2"}, "Base-2-0+1"},
		{[]string{"rollback", "--to", ""}, allLayers},
		{[]string{"volume", "--remove", ""}, "/var"},
		{[]string{"volume", "--free-hidden", "/v"}, "/var"},
		{[]string{"--json", "boot", "--next", ""}, allLayers},
	} {
		c.rec.Calls = nil
		names, dir := c.complete(t, tc.args...)
		if got := strings.Join(names, " "); got != tc.want || dir != ":4" {
			t.Errorf("%q: %q %s, want %q :4 (no files)", tc.args, got, dir, tc.want)
		}
		if m := c.rec.Mutations(); len(m) != 0 || c.rec.Count("lvs") > 1 {
			t.Errorf("%q ran %v", tc.args, c.rec.Lines())
		}
	}
	if _, err := os.Stat(filepath.Join(c.env.Root, "var/log/imgbased.log")); err == nil {
		t.Errorf("completion wrote the log")
	}
	if names, _ := c.complete(t, "update", "--format", ""); strings.Join(names, " ") != "raw liveimg" {
		t.Errorf("update --format: %q", names)
	}
	if names, _ := c.complete(t, "--log-format", ""); strings.Join(names, " ") != "text json" {
		t.Errorf("--log-format: %q", names)
	}
}

// Completion runs while the admin types: it neither waits for the lock
// nor says anything when the layout cannot be read.
func TestCompletionIsQuietAndLockFree(t *testing.T) {
	c := newCLI(t, "running", 5)
	failing := &commandtest.Recorder{}
	failing.On("lvs ", "", &command.Error{ExitCode: 5})
	c.env.Runner = failing
	code, out, stderr := c.runArgs("__complete", "layer", "--remove", "")
	if code != 0 || out != ":4\n" || strings.Contains(stderr, "imgbase:") {
		t.Errorf("with lvs failing: %d %q %q", code, out, stderr)
	}

	c = newCLI(t, "running", 5)
	os.WriteFile(filepath.Join(c.env.Root, "imgbased.conf"), []byte("[update]\nimages_to_keep = many\n"), 0o644)
	if names, _ := c.complete(t, "boot", "--next", ""); len(names) != 0 {
		t.Errorf("with a broken config: %q", names)
	}

	c = newCLI(t, "running", 5)
	held, err := lock.Acquire(context.Background(), filepath.Join(c.env.Root, "lock"), "pid 1: imgbase layer --add", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	if names, _ := c.complete(t, "rollback", "--to", ""); len(names) != 3 {
		t.Errorf("while another imgbase holds the lock: %q", names)
	}
}

func TestDocs(t *testing.T) {
	c := newCLI(t, "running", 5)
	out := t.TempDir()
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600") // 2026-01-01
	if code, _, stderr := c.runArgs("__docs", out); code != 0 {
		t.Fatalf("__docs: %d %s", code, stderr)
	}
	var pages []string
	ents, _ := os.ReadDir(filepath.Join(out, "man8"))
	for _, e := range ents {
		pages = append(pages, e.Name())
	}
	want := "imgbase-base.8 imgbase-boot.8 imgbase-check.8 imgbase-layer.8 imgbase-layout.8 imgbase-manifest.8 imgbase-recover.8 imgbase-rollback.8 imgbase-switch.8 imgbase-update.8 imgbase-volume.8 imgbase.8"
	if got := strings.Join(pages, " "); got != want {
		t.Errorf("man pages: %s\nwant %s", got, want)
	}
	page := read(t, filepath.Join(out, "man8/imgbase-update.8"))
	for _, w := range []string{
		`.TH "IMGBASE-UPDATE" "8" "Jan 2026"`,
		".SH SYNOPSIS\n\\fBimgbase update [--format raw|liveimg] [--check] [IMAGE]",
		"\\fB--sha256\\fP",
		"\\fB--log-format\\fP", // inherited
		"imgbase update /var/tmp/node-4.5-1.squashfs.img",
		".SH EXIT STATUS\n", "\\fB2\\fP\nbad usage",
		".SH FILES\n", "/var/lib/imgbase/journal.json", "/etc/imgbased.conf.d/",
		".SH SEE ALSO\n\\fBimgbase(8)\\fP",
	} {
		if !strings.Contains(page, w) {
			t.Errorf("imgbase-update.8 lacks %q", w)
		}
	}
	if strings.Contains(page, "lock-file") || strings.Contains(page, "HISTORY") {
		t.Errorf("imgbase-update.8 shows a hidden flag or cobra's HISTORY")
	}
	if p := read(t, filepath.Join(out, "man8/imgbase-layout.8")); strings.Contains(p, "journal.json") || !strings.Contains(p, "imgbase layout --init Base-1-0 --from /") {
		t.Errorf("imgbase-layout.8: wrong FILES or no examples:\n%s", p)
	}
	root := read(t, filepath.Join(out, "man8/imgbase.8"))
	if !strings.Contains(root, "imgbase-update(8)") || strings.Contains(root, "__docs") || strings.Contains(root, "completion") {
		t.Errorf("imgbase.8 SEE ALSO:\n%s", root)
	}
	for f, w := range map[string]string{
		"completions/bash/imgbase":      "__start_imgbase",
		"completions/zsh/_imgbase":      "#compdef imgbase",
		"completions/fish/imgbase.fish": "complete -c imgbase",
	} {
		if s := read(t, filepath.Join(out, f)); !strings.Contains(s, w) {
			t.Errorf("%s lacks %q", f, w)
		}
	}

	// Same sources, same bytes; the date comes from SOURCE_DATE_EPOCH or
	// is fixed, never the clock.
	again := t.TempDir()
	c.runArgs("__docs", again)
	if read(t, filepath.Join(again, "man8/imgbase-update.8")) != page {
		t.Errorf("a second run wrote another page")
	}
	t.Setenv("SOURCE_DATE_EPOCH", "")
	c.runArgs("__docs", again)
	if p := read(t, filepath.Join(again, "man8/imgbase-update.8")); !strings.Contains(p, `"8" "`+docsDate.Format("Jan 2006")+`"`) {
		t.Errorf("without SOURCE_DATE_EPOCH: %s", strings.SplitN(p, "\n", 3)[1])
	}
	t.Setenv("SOURCE_DATE_EPOCH", "yesterday")
	if code, _, stderr := c.runArgs("__docs", again); code != 2 || !strings.Contains(stderr, "SOURCE_DATE_EPOCH") {
		t.Errorf("bad SOURCE_DATE_EPOCH: %d %s", code, stderr)
	}
	if code, _, _ := c.runArgs("__docs"); code != 2 {
		t.Errorf("__docs without OUTDIR: exit %d", code)
	}

	// What the packages check: man renders each page, bash loads the script.
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600")
	if _, err := exec.LookPath("man"); err == nil {
		for _, p := range pages {
			cmd := exec.Command("man", "-l", filepath.Join(out, "man8", p))
			cmd.Env = append(os.Environ(), "MANWIDTH=80", "MANPAGER=cat", "PAGER=cat")
			var errb bytes.Buffer
			cmd.Stderr = &errb
			b, err := cmd.Output()
			if err != nil || !strings.Contains(string(b), "EXIT STATUS") || errb.Len() != 0 {
				t.Errorf("man -l %s: %v %s\n%s", p, err, errb.String(), b)
			}
		}
	} else {
		t.Log("no man here: pages not rendered")
	}
	b, err := exec.Command("bash", "-c", "source "+filepath.Join(out, "completions/bash/imgbase")+"; complete -p imgbase").CombinedOutput()
	if err != nil || !strings.Contains(string(b), "__start_imgbase imgbase") {
		t.Errorf("bash completion: %v %s", err, b)
	}
	if len(c.rec.Calls) != 0 {
		t.Errorf("__docs ran %v", c.rec.Lines())
	}
}

func TestHiddenCommandsStayHidden(t *testing.T) {
	c := newCLI(t, "running", 5)
	code, out, _ := c.runArgs("--help")
	if code != 0 || strings.Contains(out, "__docs") || strings.Contains(out, "completion") || !strings.Contains(out, "rollback") {
		t.Errorf("--help: %d\n%s", code, out)
	}
}

func TestVersion(t *testing.T) {
	c := newCLI(t, "running", 5)
	code, out, _ := c.runArgs("--version")
	want := "imgbase dev (commit unknown, " + runtime.Version() + ")\n"
	if code != 0 || out != want {
		t.Errorf("--version: %d %q, want %q", code, out, want)
	}
	code, out, _ = c.runArgs("--json", "--version")
	var v map[string]string
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil || v["version"] != "dev" || v["commit"] != "unknown" || v["go"] != runtime.Version() || len(v) != 3 {
		t.Errorf("--json --version: %d %v %q", code, err, out)
	}

	defer func(v, c string) { version, commit = v, c }(version, commit)
	version, commit = "v0.1.0", "abc1234"
	if b := currentBuild().String(); b != "imgbase 0.1.0 (commit abc1234, "+runtime.Version()+")" {
		t.Errorf("with -ldflags -X: %s", b)
	}
	if len(c.rec.Calls) != 0 {
		t.Errorf("--version ran %v", c.rec.Lines())
	}
}

func TestVCSRevision(t *testing.T) {
	for _, tc := range []struct {
		settings []debug.BuildSetting
		want     string
	}{
		{nil, ""},
		{[]debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "false"}}, "0123456789ab"},
		{[]debug.BuildSetting{{Key: "vcs.modified", Value: "true"}, {Key: "vcs.revision", Value: "abc1234"}}, "abc1234-dirty"},
	} {
		if got := vcsRevision(tc.settings); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.settings, got, tc.want)
		}
	}
}

// Warnings read as sentences; --debug keeps slog's lines, --log-format
// json gives one JSON object a line.
func TestLogFormats(t *testing.T) {
	const warning = "imgbase: warning: the layer has no fstab and no boot entry: Base-10-0+1 (base Base-10-0); its base holds no filesystem yet\n"
	c := newCLI(t, "running", 5) // Base-10-0, the newest base, holds no filesystem
	if code, _, stderr := c.runArgs("layer", "--add"); code != 0 || stderr != warning {
		t.Errorf("text: %d %q\nwant %q", code, stderr, warning)
	}

	c = newCLI(t, "running", 5)
	code, _, stderr := c.runArgs("--log-format", "json", "layer", "--add")
	var rec map[string]any
	if err := json.Unmarshal([]byte(stderr), &rec); code != 0 || err != nil || rec["level"] != "WARN" || rec["layer"] != "Base-10-0+1" || rec["base"] != "Base-10-0" {
		t.Errorf("json: %d %v %q", code, err, stderr)
	}

	c = newCLI(t, "running", 5)
	code, _, stderr = c.runArgs("--debug", "layer", "--add")
	if code != 0 || !strings.Contains(stderr, `level=INFO msg="adding layer" layer=Base-10-0+1`) || !strings.Contains(stderr, "level=WARN msg=") {
		t.Errorf("--debug: %d %q", code, stderr)
	}

	if code, _, stderr := c.runArgs("--log-format", "yaml", "layout"); code != 2 || !strings.Contains(stderr, "text or json") {
		t.Errorf("--log-format yaml: %d %q", code, stderr)
	}
	// The log file keeps its key=value records whatever stderr shows.
	data, _ := os.ReadFile(filepath.Join(c.env.Root, "var/log/imgbased.log"))
	if !strings.Contains(string(data), `level=WARN msg="the layer has no fstab`) {
		t.Errorf("the log file:\n%s", data)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
