package boot

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Event is one thing that happened to the boot selection.
type Event struct {
	Time time.Time `json:"time"`
	// Kind is one of the Event* constants.
	Kind  string `json:"kind"`
	Layer string `json:"layer"`
	// Booted is the layer that was running when the event was recorded.
	Booted string `json:"booted,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// The kinds of Event.
const (
	EventTry        = "try"         // a layer was armed for one trial boot
	EventGood       = "good"        // the trial boot reached MarkGood: now default
	EventFallback   = "fallback"    // the trial boot never reached MarkGood
	EventAbandoned  = "abandoned"   // another layer was booted during the trial
	EventSetDefault = "set-default" // the default was chosen
	EventNext       = "next"        // a one-shot boot was chosen
	EventCancel     = "cancel"      // a pending try was cancelled
)

// maxEvents bounds the record: it lives on /boot.
const maxEvents = 50

// record is the status file's content.
type record struct {
	// Try is the layer on trial (systemd-boot keeps it only here; GRUB
	// keeps it in grubenv too).
	Try string `json:"try,omitempty"`
	// ArmedBoot is the kernel boot id when Try was armed (systemd-boot).
	ArmedBoot string `json:"armed_boot,omitempty"`
	// Panicked are the layers whose entries carry the PanicReboot imgbase
	// gave them for a trial, until their first good boot takes it out
	// again (an admin's own panic= stays). A layer whose trial was
	// overtaken by a newer one's keeps its place here: it may boot good
	// later (boot --next, rollback).
	Panicked []string `json:"panicked,omitempty"`
	// Good are the layers that have reached the success mark at least
	// once (MarkGood ran while they were running), oldest first. Unlike
	// Events it is not trimmed: rollback relies on it.
	Good   []string `json:"good,omitempty"`
	Events []Event  `json:"events"`
}

func (m *Manager) readRecord() (record, error) {
	var r record
	data, err := os.ReadFile(m.statusPath())
	if errors.Is(err, os.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return r, wrap("read the boot status", err)
	}
	if err := json.Unmarshal(data, &r); err != nil {
		// The record is informative only; a damaged one must not stop
		// a boot from being marked good.
		m.Log.Warn("cannot read the boot status record; starting a new one", "path", m.statusPath(), "err", err)
		return record{}, nil
	}
	return r, nil
}

func (m *Manager) writeRecord(r record) error {
	if len(r.Events) > maxEvents {
		r.Events = r.Events[len(r.Events)-maxEvents:]
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return wrap("write the boot status", err)
	}
	if err := m.files().MkdirAll(filepath.Dir(m.statusPath())); err != nil {
		return err
	}
	return m.files().WriteFile(m.statusPath(), append(data, '\n'), 0o644)
}

// addEvent appends an event and optionally changes the try layer, in one
// write.
func (m *Manager) addEvent(ev Event, try *string) error {
	r, err := m.readRecord()
	if err != nil {
		return err
	}
	ev.Time = m.now().UTC()
	if ev.Booted == "" {
		ev.Booted = m.running()
	}
	r.Events = append(r.Events, ev)
	if try != nil {
		r.Try = *try
		if *try == "" {
			r.ArmedBoot = ""
		}
	}
	return m.writeRecord(r)
}

// bootedGood returns the layers known to have booted to a working system:
// those that reached the success mark, those a trial proved good, those
// that were running when any event was recorded (an admin ran imgbase in
// them, so they were up; this also reads the history of hosts whose record
// predates Good), and the running layer.
func (m *Manager) bootedGood() (map[string]bool, error) {
	r, err := m.readRecord()
	if err != nil {
		return nil, err
	}
	good := map[string]bool{}
	for _, l := range r.Good {
		good[l] = true
	}
	for _, e := range r.Events {
		if e.Kind == EventGood {
			good[e.Layer] = true
		}
		if e.Booted != "" {
			good[e.Booted] = true
		}
	}
	if run := m.running(); run != "" {
		good[run] = true
	}
	return good, nil
}

// BootedGood reports whether layer has ever booted to a working system
// (see bootedGood).
func (m *Manager) BootedGood(layer string) (bool, error) {
	good, err := m.bootedGood()
	return good[layer], err
}

// Status is the boot selection as it stands, and its history.
type Status struct {
	Loader  string `json:"loader"`
	Running string `json:"running"`
	Default string `json:"default"`
	Next    string `json:"next,omitempty"`
	// Try is the layer on trial and TryState where the trial is:
	// "try" (armed), "trying" (booted, not yet good), "failed".
	Try      string  `json:"try,omitempty"`
	TryState string  `json:"try_state,omitempty"`
	Events   []Event `json:"events"`
}

// String renders the status for imgbase boot --status.
func (s Status) String() string {
	out := fmt.Sprintf("loader: %s\nrunning: %s\ndefault: %s\n", s.Loader, orNone(s.Running), orNone(s.Default))
	if s.Next != "" {
		out += fmt.Sprintf("next boot only: %s\n", s.Next)
	}
	if s.Try != "" {
		out += fmt.Sprintf("on trial: %s (%s)\n", s.Try, s.TryState)
	}
	for _, e := range s.Events {
		out += fmt.Sprintf("%s  %-11s %s", e.Time.Format(time.RFC3339), e.Kind, e.Layer)
		if e.Booted != "" {
			out += " (running " + e.Booted + ")"
		}
		if e.Detail != "" {
			out += ": " + e.Detail
		}
		out += "\n"
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
