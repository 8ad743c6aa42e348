package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbase/imgbase/test/vm/wire"
)

// exchange feeds request lines to serve and returns its responses.
func exchange(t *testing.T, lines ...string) []wire.Response {
	t.Helper()
	in := strings.NewReader(strings.Join(lines, "\n") + "\n")
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- serve(in, pw); pw.Close() }()
	var out []wire.Response
	sc := bufio.NewScanner(pr)
	sc.Buffer(nil, 1<<26)
	for sc.Scan() {
		var r wire.Response
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("bad response line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	if err := <-done; err != io.EOF {
		t.Fatalf("serve ended with %v, want EOF", err)
	}
	if len(out) != len(lines) {
		t.Fatalf("%d responses to %d requests", len(out), len(lines))
	}
	return out
}

func req(r wire.Request) string {
	b, _ := json.Marshal(r)
	return string(b)
}

func TestRun(t *testing.T) {
	rs := exchange(t,
		req(wire.Request{ID: 1, Op: wire.OpRun, Argv: []string{"echo", "hello"}}),
		req(wire.Request{ID: 2, Op: wire.OpRun, Shell: "echo oops >&2; exit 3"}),
		req(wire.Request{ID: 3, Op: wire.OpRun, Argv: []string{"cat"}, Stdin: []byte("in")}),
		req(wire.Request{ID: 4, Op: wire.OpRun, Argv: []string{"/nonexistent/cmd"}}),
	)
	if r := rs[0]; r.ID != 1 || string(r.Stdout) != "hello\n" || r.ExitCode != 0 || r.Err != "" {
		t.Errorf("echo: %+v", r)
	}
	if r := rs[1]; r.ID != 2 || r.ExitCode != 3 || string(r.Stderr) != "oops\n" {
		t.Errorf("exit 3: %+v", r)
	}
	if r := rs[2]; string(r.Stdout) != "in" {
		t.Errorf("stdin: %+v", r)
	}
	if r := rs[3]; r.Err == "" || r.ExitCode != -1 {
		t.Errorf("missing command: %+v", r)
	}
}

func TestRunTimeoutKillsTheGroup(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "late")
	// The background child would write the marker after the shell is killed
	// unless the whole process group dies.
	rs := exchange(t, req(wire.Request{ID: 7, Op: wire.OpRun, TimeoutMS: 300,
		Shell: "(sleep 1; touch " + marker + ") & sleep 30"}))
	if r := rs[0]; !r.TimedOut || r.ExitCode != -1 || r.Err == "" {
		t.Fatalf("timeout: %+v", r)
	}
	rs = exchange(t, req(wire.Request{ID: 8, Op: wire.OpRun, Shell: "sleep 1.5"}))
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("a child of the timed-out command survived and wrote %s", marker)
	}
}

func TestWriteRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "file")
	data := []byte{0, 1, 2, 255, '\n'}
	rs := exchange(t,
		req(wire.Request{ID: 1, Op: wire.OpWrite, Path: path, Data: data, Mode: 0o750}),
		req(wire.Request{ID: 2, Op: wire.OpRead, Path: path}),
		req(wire.Request{ID: 3, Op: wire.OpRead, Path: path + ".missing"}),
	)
	if rs[0].Err != "" {
		t.Fatalf("write: %s", rs[0].Err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("written file: %v %v, want mode 0750", fi, err)
	}
	if string(rs[1].Data) != string(data) {
		t.Errorf("read %v, want %v", rs[1].Data, data)
	}
	if rs[2].Err == "" {
		t.Errorf("reading a missing file gave no error")
	}
}

func TestBadRequests(t *testing.T) {
	rs := exchange(t, `{"id": 5, "op": "fly"}`, `not json`, req(wire.Request{ID: 6, Op: wire.OpPing}))
	if rs[0].ID != 5 || !strings.Contains(rs[0].Err, "unknown op") {
		t.Errorf("unknown op: %+v", rs[0])
	}
	if !strings.Contains(rs[1].Err, "cannot decode") {
		t.Errorf("bad JSON: %+v", rs[1])
	}
	if rs[2].ID != 6 || rs[2].Err != "" || rs[2].BootID == "" {
		t.Errorf("ping: %+v", rs[2])
	}
}
