package boot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/imgbase/imgbase/internal/boot/grubcfg"
)

// ProblemKind says what is wrong.
type ProblemKind string

const (
	NoEntry     ProblemKind = "no-entry"     // a layer without a boot entry
	NoLayer     ProblemKind = "no-layer"     // an entry whose layer does not exist
	MissingFile ProblemKind = "missing-file" // an entry's kernel or initramfs is gone
	BadDefault  ProblemKind = "bad-default"  // the default names no entry
	NotWired    ProblemKind = "not-wired"    // grub.cfg does not source the menu
	StaleMenu   ProblemKind = "stale-menu"   // the GRUB menu differs from the entries
	BadGrubenv  ProblemKind = "bad-grubenv"  // grubenv unreadable or not 1024 bytes
)

// Problem is one thing Check found.
type Problem struct {
	Kind   ProblemKind
	Layer  string
	Detail string
}

func (p Problem) String() string {
	if p.Layer == "" {
		return fmt.Sprintf("%s: %s", p.Kind, p.Detail)
	}
	return fmt.Sprintf("%s: %s: %s", p.Kind, p.Layer, p.Detail)
}

// Check compares the boot tree with layers (the layers that exist, oldest
// first) and returns what is wrong; nil means nothing.
func (m *Manager) Check(ctx context.Context, layers []Layer) ([]Problem, error) {
	entries, err := m.List()
	if err != nil {
		return nil, err
	}
	var ps []Problem
	exists := map[string]bool{}
	for _, l := range layers {
		exists[l.Name] = true
		if _, ok := find(entries, l.Name); !ok {
			ps = append(ps, Problem{NoEntry, l.Name, "the layer has no boot entry"})
		}
	}
	for _, e := range entries {
		if !exists[e.Layer] {
			ps = append(ps, Problem{NoLayer, e.Layer, fmt.Sprintf("%s boots a layer that does not exist", e.Path)})
		}
		for _, p := range e.files() {
			if st, err := os.Stat(filepath.Join(m.Boot, p)); err != nil || !st.Mode().IsRegular() {
				ps = append(ps, Problem{MissingFile, e.Layer, fmt.Sprintf("%s is missing", p)})
			}
		}
	}
	if m.isGrub() {
		data, err := os.ReadFile(m.grubenvPath())
		if err == nil && len(data) != 1024 {
			err = fmt.Errorf("%d bytes", len(data))
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			ps = append(ps, Problem{BadGrubenv, "", fmt.Sprintf("%s: %v", m.grubenvPath(), err)})
		}
		cfg, err := os.ReadFile(m.grubCfgPath())
		if err != nil || !grubcfg.Wired(cfg) {
			ps = append(ps, Problem{NotWired, "", m.grubCfgPath() + " does not source " + grubcfg.FileName})
		}
		want := grubcfg.Render(m.fragment(ctx, entries))
		if have, err := os.ReadFile(m.fragmentPath()); err != nil || !bytes.Equal(have, want) {
			ps = append(ps, Problem{StaleMenu, "", m.fragmentPath() + " does not match the boot entries"})
		}
	}
	if def, err := m.Default(); err == nil {
		if def == "" {
			ps = append(ps, Problem{BadDefault, "", "no default boot entry is set"})
		} else if _, ok := find(entries, def); !ok {
			ps = append(ps, Problem{BadDefault, def, "the default boot entry does not exist"})
		}
	} else if !errors.Is(err, ErrNoLoader) {
		ps = append(ps, Problem{BadDefault, "", err.Error()})
	}
	return ps, nil
}

// Recover repairs what Check finds: entries of missing layers go, layers
// without an entry or with missing files get one again (from their
// KernelSrcDir, which the caller mounts), the menu and wiring are redone,
// and a default naming no entry becomes the newest layer of layers. It
// returns the problems that remain.
func (m *Manager) Recover(ctx context.Context, layers []Layer) ([]Problem, error) {
	ps, err := m.Check(ctx, layers)
	if err != nil {
		return nil, err
	}
	byName := map[string]Layer{}
	for _, l := range layers {
		byName[l.Name] = l
	}
	// Entries first, so that a default moved off a missing layer has
	// somewhere to go.
	redo := map[string]bool{}
	var orphans []string
	for _, p := range ps {
		switch p.Kind {
		case NoEntry, MissingFile:
			redo[p.Layer] = true
		case NoLayer:
			orphans = append(orphans, p.Layer)
		}
	}
	for _, l := range layers {
		if !redo[l.Name] {
			continue
		}
		if l.KernelSrcDir == "" {
			m.Log.Warn("cannot recreate a boot entry without the layer's kernel directory", "layer", l.Name)
			continue
		}
		if _, err := m.AddLayer(ctx, l, false); err != nil {
			return nil, err
		}
	}
	if m.Loader != LoaderNone {
		if err := m.Setup(ctx); err != nil {
			return nil, err
		}
		def, err := m.Default()
		if err != nil {
			return nil, err
		}
		if _, ok := byName[def]; !ok || def == "" {
			if err := m.defaultToNewest(ctx, layers); err != nil {
				return nil, err
			}
		} else if _, err := m.requireEntry(def); err != nil {
			if err := m.defaultToNewest(ctx, layers); err != nil {
				return nil, err
			}
		}
	}
	for _, o := range orphans {
		if err := m.RemoveLayer(ctx, o); err != nil {
			return nil, err
		}
	}
	if m.Dry != nil {
		return ps, nil
	}
	return m.Check(ctx, layers)
}

// defaultToNewest makes the newest of layers that has an entry the default.
func (m *Manager) defaultToNewest(ctx context.Context, layers []Layer) error {
	for i := len(layers) - 1; i >= 0; i-- {
		if _, err := m.requireEntry(layers[i].Name); err == nil {
			return m.SetDefault(ctx, layers[i].Name)
		}
	}
	return errors.New("cannot choose a default: no layer has a boot entry")
}
