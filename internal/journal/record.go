package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// The file format. It is JSON so that an admin can read what a crash left.
const formatVersion = 1

const (
	phaseRunning     = "running"
	phaseCommitted   = "committed"
	phaseRollingBack = "rolling-back"
)

const (
	statePending = "pending"
	stateTrying  = "trying"
	stateDone    = "done"
	stateUndone  = "undone"
)

// record is the content of the journal file.
type record struct {
	Version     int          `json:"version"`
	Tx          string       `json:"tx"`
	Root        string       `json:"root,omitempty"`
	Started     time.Time    `json:"started"`
	Phase       string       `json:"phase"`
	Steps       []stepRecord `json:"steps"`
	AfterCommit []stepRecord `json:"after_commit"`
}

type stepRecord struct {
	Kind  string `json:"kind"`
	Args  Args   `json:"args,omitempty"`
	State string `json:"state"`
}

func (s *stepRecord) describe() string { return describe(s.Kind, s.Args) }

func newRecord(tx Tx, root string, now time.Time) *record {
	r := &record{Version: formatVersion, Tx: tx.Name, Root: root, Started: now.UTC(), Phase: phaseRunning,
		Steps: []stepRecord{}, AfterCommit: []stepRecord{}}
	for _, s := range tx.Steps {
		r.Steps = append(r.Steps, stepRecord{Kind: s.Kind, Args: maps.Clone(s.Args), State: statePending})
	}
	for _, s := range tx.AfterCommit {
		r.AfterCommit = append(r.AfterCommit, stepRecord{Kind: s.Kind, Args: maps.Clone(s.Args), State: statePending})
	}
	return r
}

func (r *record) marshal() ([]byte, error) {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("cannot encode journal: %w", err)
	}
	return append(data, '\n'), nil
}

// unmarshalRecord decodes a journal and checks that it describes a state
// Run can have left, so that Recover never acts on a file it misreads.
func unmarshalRecord(data []byte) (*record, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var r record
	if err := dec.Decode(&r); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after the journal")
	}
	if r.Version != formatVersion {
		return nil, fmt.Errorf("format version %d, want %d", r.Version, formatVersion)
	}
	if r.Tx == "" {
		return nil, errors.New("no transaction name")
	}
	for _, s := range slices.Concat(r.Steps, r.AfterCommit) {
		if s.Kind == "" {
			return nil, errors.New("a step without a kind")
		}
		switch s.State {
		case statePending, stateTrying, stateDone, stateUndone:
		default:
			return nil, fmt.Errorf("step %s in unknown state %q", s.describe(), s.State)
		}
	}
	if r.Phase != phaseRollingBack && !prefixOrder(r.Steps, stateUndone) {
		return nil, fmt.Errorf("steps in impossible states for phase %s: %s", r.Phase, states(r.Steps))
	}
	switch r.Phase {
	case phaseRunning, phaseRollingBack:
		if !allIn(r.AfterCommit, statePending) {
			return nil, fmt.Errorf("steps after the commit begun in phase %s: %s", r.Phase, states(r.AfterCommit))
		}
	case phaseCommitted:
		if !allIn(r.Steps, stateDone) {
			return nil, fmt.Errorf("committed with steps not done: %s", states(r.Steps))
		}
		if !prefixOrder(r.AfterCommit, stateUndone) {
			return nil, fmt.Errorf("steps after the commit in impossible states: %s", states(r.AfterCommit))
		}
	default:
		return nil, fmt.Errorf("unknown phase %q", r.Phase)
	}
	return &r, nil
}

// prefixOrder reports whether steps read done…, at most one trying, then
// pending…, with no step in state banned: the order Run goes forward in.
func prefixOrder(steps []stepRecord, banned string) bool {
	rank := map[string]int{stateDone: 0, stateTrying: 1, statePending: 2}
	last, trying := 0, 0
	for _, s := range steps {
		if s.State == banned {
			return false
		}
		if rank[s.State] < last {
			return false
		}
		last = rank[s.State]
		if s.State == stateTrying {
			trying++
		}
	}
	return trying <= 1
}

func allIn(steps []stepRecord, state string) bool {
	for _, s := range steps {
		if s.State != state {
			return false
		}
	}
	return true
}

func states(steps []stepRecord) string {
	var b strings.Builder
	for i, s := range steps {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(s.Kind + ":" + s.State)
	}
	return b.String()
}

// describe renders a step for logs and messages: its kind, then its
// arguments in key order.
func describe(kind string, a Args) string {
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString(kind)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s", k, a[k])
	}
	return b.String()
}
