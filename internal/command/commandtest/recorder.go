// Package commandtest provides a recording fake Runner for unit tests.
package commandtest

import (
	"context"
	"strings"
	"sync"

	"github.com/imgbase/imgbase/internal/command"
)

// Response is what the Recorder answers to a command whose line starts
// with Prefix.
type Response struct {
	Prefix string
	Stdout string
	Err    error
	// Times limits how often the response is used; 0 means always.
	Times int
}

// Recorder records every command it is asked to run and answers from a
// list of canned responses (first matching prefix wins). Unmatched
// commands succeed with empty output.
type Recorder struct {
	mu        sync.Mutex
	Calls     []command.Cmd
	responses []*Response
}

// On adds a canned response for commands whose line starts with prefix.
func (r *Recorder) On(prefix, stdout string, err error) *Recorder {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.responses = append(r.responses, &Response{Prefix: prefix, Stdout: stdout, Err: err})
	return r
}

// Once adds a canned response used only once.
func (r *Recorder) Once(prefix, stdout string, err error) *Recorder {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.responses = append(r.responses, &Response{Prefix: prefix, Stdout: stdout, Err: err, Times: 1})
	return r
}

func (r *Recorder) Run(_ context.Context, c command.Cmd) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Calls = append(r.Calls, c)
	line := c.String()
	for _, resp := range r.responses {
		if resp.Times < 0 || !strings.HasPrefix(line, resp.Prefix) {
			continue
		}
		if resp.Times > 0 {
			resp.Times--
			if resp.Times == 0 {
				resp.Times = -1
			}
		}
		return []byte(resp.Stdout), resp.Err
	}
	return nil, nil
}

// Lines returns the recorded command lines.
func (r *Recorder) Lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.Calls))
	for i, c := range r.Calls {
		out[i] = c.String()
	}
	return out
}

// Count returns how many recorded commands run one of the named programs.
func (r *Recorder) Count(programs ...string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.Calls {
		for _, p := range programs {
			if len(c.Argv) > 0 && c.Argv[0] == p {
				n++
			}
		}
	}
	return n
}

// Mutations returns the lines of the recorded mutating commands.
func (r *Recorder) Mutations() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.Calls {
		if c.Mutating {
			out = append(out, c.String())
		}
	}
	return out
}
