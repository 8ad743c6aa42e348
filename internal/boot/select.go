package boot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/imgbase/imgbase/internal/boot/grubcfg"
	"github.com/imgbase/imgbase/internal/boot/grubenv"
)

func (m *Manager) isGrub() bool { return m.Loader == GrubMenu || m.Loader == GrubBLS }

func (m *Manager) readEnv() (*grubenv.Env, error) { return grubenv.Read(m.grubenvPath()) }

func (m *Manager) writeEnv(e *grubenv.Env) error {
	data, err := e.Marshal()
	if err != nil {
		return wrap("write "+m.grubenvPath(), err)
	}
	return m.files().WriteFile(m.grubenvPath(), data, 0o644)
}

// layerOf maps a loader ID back to its layer; an ID no entry has is
// returned as it is, so that Check can report it.
func (m *Manager) layerOf(id string) string {
	if id == "" || m.Loader == GrubMenu {
		return id
	}
	entries, _ := m.List()
	for _, e := range entries {
		if e.ID == id {
			return e.Layer
		}
	}
	return id
}

func (m *Manager) requireEntry(layer string) (Entry, error) {
	entries, err := m.List()
	if err != nil {
		return Entry{}, err
	}
	e, ok := find(entries, layer)
	if !ok {
		return Entry{}, fmt.Errorf("cannot select %s: %w", layer, ErrNoEntry)
	}
	return e, nil
}

// Default returns the layer that boots by default, "" when none is set.
func (m *Manager) Default() (string, error) {
	if err := m.Ready(); err != nil {
		return "", err
	}
	switch {
	case m.isGrub():
		env, err := m.readEnv()
		if err != nil {
			return "", err
		}
		return m.layerOf(env.Get(grubcfg.SavedEntry)), nil
	case m.Loader == SystemdBoot:
		id, err := m.loaderDefault()
		return m.layerOf(id), err
	}
	return "", ErrNoLoader
}

// SetDefault makes layer the default. A pending try is cancelled: the
// admin's choice wins.
func (m *Manager) SetDefault(ctx context.Context, layer string) error {
	e, err := m.requireEntry(layer)
	if err != nil {
		return err
	}
	switch {
	case m.isGrub():
		env, err := m.readEnv()
		if err != nil {
			return err
		}
		env.Set(grubcfg.SavedEntry, e.ID)
		env.Unset(grubcfg.TryEntry)
		env.Unset(grubcfg.BootStatus)
		if err := m.writeEnv(env); err != nil {
			return err
		}
	case m.Loader == SystemdBoot:
		if err := m.setLoaderDefault(e.ID); err != nil {
			return err
		}
	default:
		return ErrNoLoader
	}
	none := ""
	return m.addEvent(Event{Kind: EventSetDefault, Layer: layer}, &none)
}

// SetNext makes layer boot once, at the next boot only.
func (m *Manager) SetNext(ctx context.Context, layer string) error {
	e, err := m.requireEntry(layer)
	if err != nil {
		return err
	}
	switch {
	case m.isGrub():
		env, err := m.readEnv()
		if err != nil {
			return err
		}
		env.Set(grubcfg.NextEntry, e.ID)
		if err := m.writeEnv(env); err != nil {
			return err
		}
	case m.Loader == SystemdBoot:
		// The one-shot choice is an EFI variable systemd-boot clears
		// itself.
		if err := m.efi().Set(OneShotVar, e.ID); err != nil {
			return wrap("set the next boot", err)
		}
	default:
		return ErrNoLoader
	}
	return m.addEvent(Event{Kind: EventNext, Layer: layer}, nil)
}

// RollbackResult says what Rollback chose and why.
type RollbackResult struct {
	// Layer is the new default.
	Layer string `json:"default"`
	// Reason says why Layer was chosen, in a few words.
	Reason string `json:"reason"`
	// NeverBooted is set when Layer, named by the caller, has never
	// booted to a working system as far as the boot history knows.
	NeverBooted bool `json:"never_booted,omitempty"`
	// Skipped are the layers between the old default and Layer that
	// were passed over because they never booted, newest first.
	Skipped []string `json:"skipped,omitempty"`
}

// Rollback makes to the default, or, when to is "", the newest layer
// before the current default that has booted to a working system (see
// bootedGood): a layer that was added and never booted is no known-good
// state to go back to. When no earlier layer ever booted, it refuses and
// says to name one: guessing could leave the host with a default that
// never worked.
func (m *Manager) Rollback(ctx context.Context, to string) (RollbackResult, error) {
	if err := m.Ready(); err != nil {
		return RollbackResult{}, err
	}
	good, err := m.bootedGood()
	if err != nil {
		return RollbackResult{}, err
	}
	res := RollbackResult{Layer: to, Reason: "named with --to"}
	if to == "" {
		entries, err := m.List()
		if err != nil {
			return res, err
		}
		def, err := m.Default()
		if err != nil {
			return res, err
		}
		i := -1
		for j, e := range entries {
			if e.Layer == def {
				i = j
			}
		}
		switch {
		case i < 0:
			return res, fmt.Errorf("cannot roll back: the default %q has no boot entry; name a layer with --to", def)
		case i == 0:
			return res, fmt.Errorf("cannot roll back: %s is the oldest layer with a boot entry", def)
		}
		for j := i - 1; j >= 0 && res.Layer == ""; j-- {
			if l := entries[j].Layer; good[l] {
				res.Layer = l
			} else {
				res.Skipped = append(res.Skipped, l)
			}
		}
		if res.Layer == "" {
			return res, fmt.Errorf("cannot roll back: no layer before %s has ever booted (%s never did); name one with 'imgbase rollback --to LAYER' (see 'imgbase boot --list')",
				def, strings.Join(res.Skipped, ", "))
		}
		res.Reason = "the newest layer before " + def + " that has booted"
		if len(res.Skipped) > 0 {
			res.Reason += "; skipped " + strings.Join(res.Skipped, ", ") + ": never booted"
		}
	} else {
		res.NeverBooted = !good[to]
	}
	if err := m.SetDefault(ctx, res.Layer); err != nil {
		return res, fmt.Errorf("cannot roll back to %s: %w", res.Layer, err)
	}
	return res, nil
}

// arm makes the next boot try layer once; panicAdded says its entry got
// PanicReboot from imgbase.
func (m *Manager) arm(ctx context.Context, layer string, panicAdded bool) error {
	switch {
	case m.isGrub():
		env, err := m.readEnv()
		if err != nil {
			return err
		}
		env.Set(grubcfg.TryEntry, m.ID(layer))
		env.Set(grubcfg.BootStatus, grubcfg.StatusTry)
		if err := m.writeEnv(env); err != nil {
			return err
		}
		r, err := m.readRecord()
		if err != nil {
			return err
		}
		r.Try = layer
		if panicAdded {
			r.Panicked = appendOnce(r.Panicked, layer)
		}
		r.Events = append(r.Events, Event{Time: m.now().UTC(), Kind: EventTry, Layer: layer, Booted: m.running()})
		return m.writeRecord(r)
	case m.Loader == SystemdBoot:
		// systemd-boot: a one-shot boot of the layer is the trial; the
		// default stays the last good layer until MarkGood. The boot id
		// tells MarkGood on this same boot that the trial is still ahead.
		r, err := m.readRecord()
		if err != nil {
			return err
		}
		r.Try, r.ArmedBoot = layer, m.bootID()
		if panicAdded {
			r.Panicked = appendOnce(r.Panicked, layer)
		}
		r.Events = append(r.Events, Event{Time: m.now().UTC(), Kind: EventTry, Layer: layer, Booted: m.running()})
		if err := m.writeRecord(r); err != nil {
			return err
		}
		if err := m.efi().Set(OneShotVar, m.ID(layer)); err != nil {
			return wrap("arm the trial boot", err)
		}
		return nil
	}
	return ErrNoLoader
}

// cancel drops a pending one-shot or try of layer (before it is removed).
func (m *Manager) cancel(ctx context.Context, layer string) error {
	if m.Loader == SystemdBoot {
		// An unreadable variable (no efivarfs) holds no one-shot to drop.
		if cur, err := m.EFI.Get(OneShotVar); err == nil && cur == m.ID(layer) {
			if err := m.efi().Delete(OneShotVar); err != nil {
				return wrap("cancel the next boot of "+layer, err)
			}
		}
	}
	if m.isGrub() {
		env, err := m.readEnv()
		if err != nil {
			return err
		}
		id, changed := m.ID(layer), false
		if env.Get(grubcfg.NextEntry) == id {
			env.Unset(grubcfg.NextEntry)
			changed = true
		}
		if env.Get(grubcfg.TryEntry) == id {
			env.Unset(grubcfg.TryEntry)
			env.Unset(grubcfg.BootStatus)
			changed = true
		}
		if changed {
			if err := m.writeEnv(env); err != nil {
				return err
			}
		}
	}
	r, err := m.readRecord()
	if err != nil {
		return err
	}
	// A later layer of the same name is not the one given the PanicReboot.
	if slices.Contains(r.Panicked, layer) {
		r.Panicked = slices.DeleteFunc(r.Panicked, func(l string) bool { return l == layer })
		if err := m.writeRecord(r); err != nil {
			return err
		}
	}
	if r.Try == layer {
		none := ""
		return m.addEvent(Event{Kind: EventCancel, Layer: layer, Detail: "layer removed"}, &none)
	}
	return nil
}

// MarkGood is run once the system is up (imgbase-boot-success.service).
// It records that the running layer booted good (rollback goes only to
// such layers). If this boot was a layer's trial, the layer becomes the
// default and its entry loses the trial's PanicReboot; if a trial failed
// (GRUB fell back), that is recorded. It returns the trial's event, Kind ""
// when this boot was none.
//
// The record is written before grubenv: a crash between the two leaves
// the trial unfinished, and GRUB's fallback on the next boot is recorded
// after it.
func (m *Manager) MarkGood(ctx context.Context) (Event, error) {
	if err := m.Ready(); err != nil {
		return Event{}, err
	}
	if m.Loader == LoaderNone {
		return Event{}, ErrNoLoader
	}
	ev, err := m.finishTrial(ctx)
	if err != nil {
		return ev, err
	}
	plain, err := m.noteGood()
	if err != nil {
		return ev, err
	}
	if plain {
		return ev, m.plainEntry(ctx, m.running())
	}
	return ev, nil
}

// noteGood adds the running layer to the record's Good, once, and takes
// it off Panicked; plain says its entry still has imgbase's PanicReboot,
// which a layer that booted good no longer needs.
func (m *Manager) noteGood() (plain bool, err error) {
	run := m.running()
	if run == "" {
		return false, nil
	}
	r, err := m.readRecord()
	if err != nil {
		return false, err
	}
	n := len(r.Panicked)
	r.Panicked = slices.DeleteFunc(r.Panicked, func(l string) bool { return l == run })
	plain = len(r.Panicked) != n
	if slices.Contains(r.Good, run) && !plain {
		return false, nil
	}
	r.Good = appendOnce(r.Good, run)
	return plain, m.writeRecord(r)
}

func appendOnce(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// finishTrial ends a trial this boot decides.
func (m *Manager) finishTrial(ctx context.Context) (ev Event, err error) {
	run := m.running()
	r, err := m.readRecord()
	if err != nil {
		return Event{}, err
	}
	switch {
	case m.isGrub():
		env, err := m.readEnv()
		if err != nil {
			return Event{}, err
		}
		try := m.layerOf(env.Get(grubcfg.TryEntry))
		switch env.Get(grubcfg.BootStatus) {
		case grubcfg.StatusTrying:
			if run != "" && run == try {
				ev = Event{Kind: EventGood, Layer: try, Detail: "trial boot reached the success mark; now the default"}
				env.Set(grubcfg.SavedEntry, env.Get(grubcfg.TryEntry))
			} else {
				ev = Event{Kind: EventAbandoned, Layer: try, Detail: fmt.Sprintf("%s was booted instead of the trial", orNone(run))}
			}
		case grubcfg.StatusFailed:
			ev = Event{Kind: EventFallback, Layer: try,
				Detail: fmt.Sprintf("trial boot never reached the success mark; fell back to %s", orNone(m.layerOf(env.Get(grubcfg.SavedEntry))))}
		default:
			return Event{}, nil
		}
		none := ""
		if err := m.addEvent(ev, &none); err != nil {
			return Event{}, err
		}
		env.Unset(grubcfg.TryEntry)
		env.Unset(grubcfg.BootStatus)
		if err := m.writeEnv(env); err != nil {
			return Event{}, err
		}
		m.Log.Info("boot trial finished", "kind", ev.Kind, "layer", ev.Layer, "running", run)
	case m.Loader == SystemdBoot:
		if r.Try == "" || (r.ArmedBoot != "" && r.ArmedBoot == m.bootID()) {
			return Event{}, nil
		}
		ev = Event{Kind: EventFallback, Layer: r.Try, Detail: "trial boot never reached the success mark"}
		if run == r.Try {
			ev = Event{Kind: EventGood, Layer: r.Try, Detail: "trial boot reached the success mark; now the default"}
		}
		none := ""
		if err := m.addEvent(ev, &none); err != nil {
			return Event{}, err
		}
		if ev.Kind == EventGood {
			if err := m.setLoaderDefault(m.ID(r.Try)); err != nil {
				return Event{}, err
			}
		}
	}
	return ev, nil
}

// Status returns the selection and the recorded history.
func (m *Manager) Status() (Status, error) {
	s := Status{Loader: m.Loader.String(), Running: m.running()}
	if err := m.Ready(); err != nil {
		return s, err
	}
	r, err := m.readRecord()
	if err != nil {
		return s, err
	}
	s.Events = r.Events
	switch {
	case m.isGrub():
		env, err := m.readEnv()
		if err != nil {
			return s, err
		}
		s.Default = m.layerOf(env.Get(grubcfg.SavedEntry))
		s.Next = m.layerOf(env.Get(grubcfg.NextEntry))
		if st := env.Get(grubcfg.BootStatus); st != "" {
			s.Try, s.TryState = m.layerOf(env.Get(grubcfg.TryEntry)), st
		}
	case m.Loader == SystemdBoot:
		id, err := m.loaderDefault()
		if err != nil {
			return s, err
		}
		s.Default = m.layerOf(id)
		if r.Try != "" {
			s.Try, s.TryState = r.Try, grubcfg.StatusTry
		}
	}
	return s, nil
}

func (m *Manager) bootID() string {
	p := m.BootIDPath
	if p == "" {
		p = "/proc/sys/kernel/random/boot_id"
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// loaderDefault reads the "default" line of systemd-boot's loader.conf.
func (m *Manager) loaderDefault() (string, error) {
	data, err := os.ReadFile(m.loaderConf())
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", wrap("read the boot default", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "default" {
			return f[1], nil
		}
	}
	return "", nil
}

// setLoaderDefault rewrites loader.conf's "default" line, keeping the rest.
func (m *Manager) setLoaderDefault(id string) error {
	data, err := os.ReadFile(m.loaderConf())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return wrap("set the boot default", err)
	}
	var out []string
	done := false
	for _, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "default" {
			if !done {
				out = append(out, "default "+id)
				done = true
			}
			continue
		}
		if line != "" || len(out) > 0 {
			out = append(out, line)
		}
	}
	if !done {
		out = append(out, "default "+id)
	}
	return m.files().WriteFile(m.loaderConf(), []byte(strings.Join(out, "\n")+"\n"), 0o644)
}

// Setup wires the loader to the entries: for GRUB it writes the fragment,
// makes grub.cfg source it (once; rerunning changes nothing) and creates
// grubenv if missing; for systemd-boot it creates loader/entries.
func (m *Manager) Setup(ctx context.Context) error {
	if err := m.Ready(); err != nil {
		return err
	}
	if m.Loader == LoaderNone {
		return ErrNoLoader
	}
	f := m.files()
	if err := f.MkdirAll(m.entriesDir()); err != nil {
		return err
	}
	if !m.isGrub() {
		return nil
	}
	entries, err := m.List()
	if err != nil {
		return err
	}
	if err := m.writeFragment(ctx, entries); err != nil {
		return err
	}
	cfg, err := os.ReadFile(m.grubCfgPath())
	if err != nil {
		return wrap("wire GRUB", err)
	}
	if wired, changed := grubcfg.Wire(cfg); changed {
		if err := f.WriteFile(m.grubCfgPath(), wired, 0o644); err != nil {
			return err
		}
		m.Log.Info("grub.cfg now sources the imgbase menu", "path", m.grubCfgPath())
	}
	data, err := os.ReadFile(m.grubenvPath())
	if err == nil && len(data) == grubenv.Size {
		if _, perr := grubenv.Parse(data); perr == nil {
			return nil
		}
	}
	// Missing, damaged or not 1024 bytes: rewrite it in shape, keeping
	// what can be read. GRUB could not read a damaged one either.
	env, err := m.readEnv()
	if err != nil {
		m.Log.Warn("cannot read grubenv; writing an empty one", "path", m.grubenvPath(), "err", err)
		env = grubenv.New()
	}
	return m.writeEnv(env)
}
