package hooks

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imgbase/imgbase/internal/command"
	"github.com/imgbase/imgbase/internal/command/commandtest"
)

// tree makes a hooks root from path → (mode, content); a content starting
// with "-> " makes a symlink.
func tree(t *testing.T, files map[string]string, modes map[string]os.FileMode) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "-> "); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		mode, ok := modes[name]
		if !ok {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // despite the umask
			t.Fatal(err)
		}
	}
	return root
}

func wantLines(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPreRunsExecutablesInLexicalOrderAndSkipsTheRest(t *testing.T) {
	root := tree(t, map[string]string{
		"pre-update/20-b":            "#!/bin/sh\n",
		"pre-update/10-a":            "#!/bin/sh\n",
		"pre-update/100-c":           "#!/bin/sh\n", // "100" sorts before "20"
		"pre-update/15-a~":           "#!/bin/sh\n",
		"pre-update/16-a.rpmnew":     "#!/bin/sh\n",
		"pre-update/17-a.dpkg-old":   "#!/bin/sh\n",
		"pre-update/.18-hidden":      "#!/bin/sh\n",
		"pre-update/19-not-x":        "#!/bin/sh\n",
		"pre-update/30-dir/x":        "#!/bin/sh\n",
		"pre-update/40-link":         "-> 10-a",
		"pre-update/50-broken":       "-> nowhere",
		"post-update/10-not-for-pre": "#!/bin/sh\n",
	}, map[string]os.FileMode{"pre-update/19-not-x": 0o644})
	var logs bytes.Buffer
	rec := &commandtest.Recorder{}
	h := &Hooks{Dir: root, Run: rec, Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if err := h.Pre(context.Background(), Update, "Base-2-0", "Base-2-0+1"); err != nil {
		t.Fatal(err)
	}
	d := filepath.Join(root, "pre-update")
	wantLines(t, rec.Lines(), []string{
		"timeout -k 10 300 " + d + "/10-a Base-2-0 Base-2-0+1",
		"timeout -k 10 300 " + d + "/100-c Base-2-0 Base-2-0+1",
		"timeout -k 10 300 " + d + "/20-b Base-2-0 Base-2-0+1",
		"timeout -k 10 300 " + d + "/40-link Base-2-0 Base-2-0+1",
	})
	for _, c := range rec.Calls {
		if !c.Mutating {
			t.Errorf("%s is not marked as changing the system: a dry run would run it", c)
		}
	}
	for _, skipped := range []string{"15-a~", "16-a.rpmnew", "17-a.dpkg-old", ".18-hidden", "19-not-x", "30-dir", "50-broken"} {
		if !strings.Contains(logs.String(), skipped) {
			t.Errorf("skipping %s is not logged:\n%s", skipped, logs.String())
		}
	}
}

func TestFailingPreHookStopsTheRest(t *testing.T) {
	root := tree(t, map[string]string{
		"pre-layer-add/10-a": "", "pre-layer-add/20-b": "", "pre-layer-add/30-c": "",
	}, nil)
	d := filepath.Join(root, "pre-layer-add")
	rec := &commandtest.Recorder{}
	rec.On("timeout -k 10 300 "+d+"/20-b", "", &command.Error{
		Argv: []string{"timeout"}, ExitCode: 3, Stderr: "checking\nfatal: /var is 99% full\n"})
	h := &Hooks{Dir: root, Run: rec}
	err := h.Pre(context.Background(), LayerAdd, "Base-1-0", "Base-1-0+3")
	var he *Error
	if !errors.As(err, &he) {
		t.Fatalf("Pre = %v, want a *hooks.Error", err)
	}
	if he.Hook != d+"/20-b" || he.ExitCode != 3 || he.Stderr != "fatal: /var is 99% full" || he.Phase != "pre-layer-add" || he.TimedOut {
		t.Errorf("error %+v", he)
	}
	if want := "pre-layer-add hook " + d + "/20-b exited 3: fatal: /var is 99% full"; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	wantLines(t, rec.Lines(), []string{
		"timeout -k 10 300 " + d + "/10-a Base-1-0 Base-1-0+3",
		"timeout -k 10 300 " + d + "/20-b Base-1-0 Base-1-0+3",
	})
}

func TestFailingPostHooksAreWarnings(t *testing.T) {
	root := tree(t, map[string]string{
		"post-base-add/10-a": "", "post-base-add/20-b": "", "post-base-add/30-c": "",
	}, nil)
	d := filepath.Join(root, "post-base-add")
	rec := &commandtest.Recorder{}
	rec.On("timeout -k 10 300 "+d+"/10-a", "", &command.Error{ExitCode: 1, Stderr: "no network\n"})
	rec.On("timeout -k 10 300 "+d+"/30-c", "", &command.Error{ExitCode: 124})
	h := &Hooks{Dir: root, Run: rec}
	warnings := h.Post(context.Background(), BaseAdd, "Base-2-0")
	if len(rec.Lines()) != 3 {
		t.Errorf("a failed post hook stopped the others: %q", rec.Lines())
	}
	if len(warnings) != 2 {
		t.Fatalf("warnings %v", warnings)
	}
	if w := warnings[0]; w.Hook != d+"/10-a" || w.ExitCode != 1 || w.Stderr != "no network" || w.TimedOut {
		t.Errorf("first warning %+v", w)
	}
	if w := warnings[1]; w.Hook != d+"/30-c" || !w.TimedOut {
		t.Errorf("second warning %+v", w)
	}
}

func TestNoHooksDirectoryRunsNothing(t *testing.T) {
	rec := &commandtest.Recorder{}
	h := &Hooks{Dir: filepath.Join(t.TempDir(), "hooks.d"), Run: rec}
	if err := h.Pre(context.Background(), Update, "Base-2-0", "Base-2-0+1"); err != nil {
		t.Error(err)
	}
	if w := h.Post(context.Background(), Update, "Base-2-0", "Base-2-0+1"); w != nil {
		t.Error(w)
	}
	if len(rec.Calls) != 0 {
		t.Errorf("ran %q", rec.Lines())
	}
}

func TestUnreadableHooksDirectoryIsAnError(t *testing.T) {
	root := tree(t, map[string]string{"pre-update": "a file where a directory belongs", "post-update": "same"}, nil)
	h := &Hooks{Dir: root, Run: &commandtest.Recorder{}}
	var he *Error
	if err := h.Pre(context.Background(), Update, "B", "L"); !errors.As(err, &he) || he.Hook != filepath.Join(root, "pre-update") {
		t.Errorf("Pre = %v", err)
	}
	if w := h.Post(context.Background(), Update, "B", "L"); len(w) != 1 || w[0].Hook != filepath.Join(root, "post-update") {
		t.Errorf("Post = %v", w)
	}
}

func TestDryRunPrintsHooks(t *testing.T) {
	root := tree(t, map[string]string{"pre-layer-remove/10-a": ""}, nil)
	rec := &commandtest.Recorder{}
	var out bytes.Buffer
	h := &Hooks{Dir: root, Run: &command.Dry{Next: rec, Out: &out}, Timeout: 90 * time.Second}
	if err := h.Pre(context.Background(), LayerRemove, "Base-1-0", "Base-1-0+2"); err != nil {
		t.Fatal(err)
	}
	if want := "timeout -k 10 90 " + root + "/pre-layer-remove/10-a Base-1-0 Base-1-0+2\n"; out.String() != want {
		t.Errorf("printed %q, want %q", out.String(), want)
	}
	if len(rec.Calls) != 0 {
		t.Errorf("a dry run ran %q", rec.Lines())
	}
}

// The tests below run real shell scripts.

func realHooks(root string, timeout time.Duration) *Hooks {
	return &Hooks{Dir: root, Run: command.Exec{}, Timeout: timeout}
}

func TestRealHooksGetTheNamesInOrder(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	script := func(tag string) string {
		return "#!/bin/sh\necho \"" + tag + " $# $1 $2\" >> " + out + "\n"
	}
	root := tree(t, map[string]string{
		"post-update/20-second":      script("second"),
		"post-update/10-first":       script("first"),
		"post-update/15-skipped~":    script("backup"),
		"post-update/16-not-x":       script("not-x"),
		"post-update/30-third.rpmne": script("third"), // not a backup suffix
	}, map[string]os.FileMode{"post-update/16-not-x": 0o644})
	if w := realHooks(root, time.Minute).Post(context.Background(), Update, "Base-2-0", "Base-2-0+1"); w != nil {
		t.Fatal(w)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := "first 2 Base-2-0 Base-2-0+1\nsecond 2 Base-2-0 Base-2-0+1\nthird 2 Base-2-0 Base-2-0+1\n"
	if string(got) != want {
		t.Errorf("hooks wrote:\n%s\nwant:\n%s", got, want)
	}
}

func TestRealFailingPreHook(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	root := tree(t, map[string]string{
		"pre-base-remove/10-veto":  "#!/bin/sh\necho looking >&2\necho \"base $1 is pinned by policy\" >&2\nexit 7\n",
		"pre-base-remove/20-after": "#!/bin/sh\ntouch " + out + "\n",
	}, nil)
	err := realHooks(root, time.Minute).Pre(context.Background(), BaseRemove, "Base-1-0")
	var he *Error
	if !errors.As(err, &he) || he.ExitCode != 7 || he.Stderr != "base Base-1-0 is pinned by policy" || he.TimedOut {
		t.Fatalf("Pre = %#v", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("the hook after the veto ran")
	}
}

// A hook that hangs is stopped at its time limit, with the children it
// started: imgbase must not wait for a grandchild holding its output.
func TestRealHookTimesOutWithItsChildren(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	root := tree(t, map[string]string{
		"pre-update/10-hang": "#!/bin/sh\nsleep 600 &\necho $! > " + pidFile + "\nwait\n",
	}, nil)
	err := realHooks(root, time.Second).Pre(context.Background(), Update, "Base-2-0", "Base-2-0+1")
	var he *Error
	if !errors.As(err, &he) || !he.TimedOut {
		t.Fatalf("Pre = %#v, want a timeout", err)
	}
	if !strings.Contains(err.Error(), "time limit") {
		t.Errorf("message %q", err)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	// The sleep may linger as a zombie of init for a moment; a live
	// process would still be there.
	var stat []byte
	for range 50 {
		stat, err = os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(stat), ") Z ") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("the hook's child %d still runs: %s", pid, stat)
	syscall.Kill(pid, syscall.SIGKILL)
}

// A hook, or a hooks directory, that others may write is refused: a
// pre-hook's veto stops the verb, a post-hook's is a warning; nothing runs.
func TestWritableHooksAreRefused(t *testing.T) {
	root := tree(t, map[string]string{"pre-update/10-open": "#!/bin/sh\n", "post-update/10-ok": "#!/bin/sh\n"},
		map[string]os.FileMode{"pre-update/10-open": 0o777})
	rec := &commandtest.Recorder{}
	h := &Hooks{Dir: root, Run: rec}
	if err := h.Pre(context.Background(), Update, "B", "L"); !errors.Is(err, ErrWritable) || !strings.Contains(err.Error(), "10-open") {
		t.Errorf("Pre with a world-writable hook = %v", err)
	}
	if err := os.Chmod(filepath.Join(root, "post-update"), 0o777); err != nil {
		t.Fatal(err)
	}
	if w := h.Post(context.Background(), Update, "B", "L"); len(w) != 1 || !errors.Is(w[0], ErrWritable) || w[0].Hook != filepath.Join(root, "post-update") {
		t.Errorf("Post with a world-writable directory = %v", w)
	}
	if len(rec.Lines()) != 0 {
		t.Errorf("hooks ran: %v", rec.Lines())
	}
}
