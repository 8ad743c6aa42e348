package boot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/imgbase/imgbase/internal/boot/bls"
	"github.com/imgbase/imgbase/internal/boot/cmdline"
	"github.com/imgbase/imgbase/internal/boot/grubcfg"
	"github.com/imgbase/imgbase/internal/boot/kernel"
	"github.com/imgbase/imgbase/internal/command"
)

// Layer is what AddLayer needs to know about a layer.
type Layer struct {
	Name string // "Base-1-0+1"
	NVR  string // its base, "Base-1-0"
	VG   string // "HostVG"
	LV   string // the LV name; Name when empty
	// KernelSrcDir holds the kernel(s) to boot: the layer's own /boot
	// when it has kernels, else the host's /boot.
	KernelSrcDir string
	// CmdlineExtra is appended to the options; an argument replaces a
	// carried-over one with the same key.
	CmdlineExtra []string
}

func (l Layer) lv() string {
	if l.LV != "" {
		return l.LV
	}
	return l.Name
}

// Entry is one layer's boot entry as found in loader/entries.
type Entry struct {
	Layer string
	// ID is what the loader calls the entry.
	ID   string
	Path string
	bls.Entry
}

// ID returns what the detected loader calls layer's entry: GRUB's menu
// uses the layer name as --id, blscfg the file name without ".conf",
// systemd-boot the file name.
func (m *Manager) ID(layer string) string {
	switch m.Loader {
	case GrubBLS:
		return bls.ID(layer)
	case SystemdBoot:
		return bls.FileName(layer)
	}
	return layer
}

// List returns imgbase's entries (those naming a layer with img.bootid=),
// oldest layer first. Foreign entries (the distribution's own) are left
// alone.
func (m *Manager) List() ([]Entry, error) {
	if err := m.Ready(); err != nil {
		return nil, err
	}
	dirents, err := os.ReadDir(m.entriesDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, wrap("list boot entries", err)
	}
	var out []Entry
	for _, d := range dirents {
		if !d.Type().IsRegular() || !strings.HasSuffix(d.Name(), ".conf") {
			continue
		}
		p := filepath.Join(m.entriesDir(), d.Name())
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, wrap("list boot entries", err)
		}
		e, err := bls.Parse(data)
		if err != nil {
			m.Log.Warn("skipping unreadable boot entry", "path", p, "err", err)
			continue
		}
		layer := e.Layer()
		if layer == "" {
			continue
		}
		out = append(out, Entry{Layer: layer, ID: m.ID(layer), Path: p, Entry: e})
	}
	m.sort(out)
	return out, nil
}

func (m *Manager) sort(es []Entry) {
	less := m.Less
	if less == nil {
		less = LayerLess
	}
	sort.SliceStable(es, func(i, j int) bool { return less(es[i].Layer, es[j].Layer) })
}

func find(es []Entry, layer string) (Entry, bool) {
	for _, e := range es {
		if e.Layer == layer {
			return e, true
		}
	}
	return Entry{}, false
}

// AddLayer copies the newest kernel and initramfs of l.KernelSrcDir to
// <boot>/<layer>/, writes the layer's entry (options: the layer as root,
// img.bootid, the running command line's other arguments, l.CmdlineExtra)
// and re-renders the GRUB menu. It does not change the default; with try
// the next boot tries the layer once (see MarkGood).
func (m *Manager) AddLayer(ctx context.Context, l Layer, try bool) (Entry, error) {
	if err := bls.CheckLayerName(l.Name); err != nil {
		return Entry{}, err
	}
	if l.VG == "" {
		return Entry{}, fmt.Errorf("cannot add a boot entry for %s: no volume group given", l.Name)
	}
	k, err := kernel.Newest(l.KernelSrcDir)
	if err != nil {
		return Entry{}, fmt.Errorf("cannot add a boot entry for %s: %w", l.Name, err)
	}
	entries, err := m.List()
	if err != nil {
		return Entry{}, err
	}
	before := entries
	p := filepath.Join(m.entriesDir(), bls.FileName(l.Name))
	if data, err := os.ReadFile(p); err == nil {
		if old, err := bls.Parse(data); err == nil && old.Layer() != "" && old.Layer() != l.Name {
			return Entry{}, fmt.Errorf("cannot add a boot entry for %s: %s belongs to layer %s", l.Name, p, old.Layer())
		}
	}

	f := m.files()
	dir := filepath.Join(m.Boot, l.Name)
	if err := f.MkdirAll(dir); err != nil {
		return Entry{}, err
	}
	for _, name := range []string{k.Linux, k.Initrd} {
		if err := f.CopyFile(filepath.Join(dir, name), filepath.Join(l.KernelSrcDir, name)); err != nil {
			return Entry{}, err
		}
	}
	title := l.NVR
	if title == "" {
		title = l.Name
	}
	carried, extra, panicAdded := m.carried(entries), l.CmdlineExtra, false
	if try {
		extra, panicAdded = withPanicReboot(carried, extra)
	}
	e := bls.Entry{
		Title:   fmt.Sprintf("%s (%s)", title, l.Name),
		Version: k.Version,
		Linux:   path.Join("/", l.Name, k.Linux),
		Initrd:  []string{path.Join("/", l.Name, k.Initrd)},
		Options: cmdline.Layer(l.VG, l.lv(), l.Name, carried, extra),
	}
	data, err := e.Marshal()
	if err != nil {
		return Entry{}, err
	}
	if err := f.MkdirAll(m.entriesDir()); err != nil {
		return Entry{}, err
	}
	if err := f.WriteFile(p, data, 0o644); err != nil {
		return Entry{}, err
	}
	m.Log.Info("boot entry written", "layer", l.Name, "path", p, "kernel", k.Version)
	added := Entry{Layer: l.Name, ID: m.ID(l.Name), Path: p, Entry: e}
	var rest []Entry
	for _, o := range entries {
		if o.Layer != l.Name {
			rest = append(rest, o)
		}
	}
	entries = append(rest, added)
	m.sort(entries)
	if err := m.writeFragment(ctx, entries); err != nil {
		return added, err
	}
	// A re-add (a kernel upgraded inside the layer) leaves the old
	// kernel unused: remove it unless another entry boots it.
	if old, had := find(before, l.Name); had {
		if err := m.removeUnused(old, entries); err != nil {
			return added, err
		}
	}
	if try {
		if err := m.arm(ctx, l.Name, panicAdded); err != nil {
			return added, err
		}
	}
	return added, nil
}

// removeUnused removes the files of gone that no entry of keep uses.
func (m *Manager) removeUnused(gone Entry, keep []Entry) error {
	used := map[string]bool{}
	for _, o := range keep {
		for _, p := range o.files() {
			used[p] = true
		}
	}
	for _, p := range gone.files() {
		if used[p] {
			continue
		}
		if err := m.files().Remove(filepath.Join(m.Boot, p)); err != nil {
			return err
		}
	}
	return nil
}

// ErrIsDefault refuses to remove the layer that boots by default.
var ErrIsDefault = errors.New("layer is the boot default")

// RemoveLayer removes layer's entry, then those of its files that no other
// entry uses, then its directory when empty. A pending one-shot or try of
// the layer is cancelled. The default layer is refused (ErrIsDefault).
func (m *Manager) RemoveLayer(ctx context.Context, layer string) error {
	entries, err := m.List()
	if err != nil {
		return err
	}
	e, ok := find(entries, layer)
	if !ok {
		return fmt.Errorf("cannot remove the boot entry of %s: %w", layer, ErrNoEntry)
	}
	if def, err := m.Default(); err == nil && def == layer {
		return fmt.Errorf("cannot remove the boot entry of %s: %w", layer, ErrIsDefault)
	}
	if err := m.cancel(ctx, layer); err != nil {
		return err
	}
	f := m.files()
	// The entry goes first: a crash after this leaves unused files, never
	// an entry whose kernel is gone.
	if err := f.Remove(e.Path); err != nil {
		return err
	}
	var rest []Entry
	used := map[string]bool{}
	for _, o := range entries {
		if o.Layer == layer {
			continue
		}
		rest = append(rest, o)
		for _, p := range o.files() {
			used[p] = true
		}
	}
	if err := m.writeFragment(ctx, rest); err != nil {
		return err
	}
	for _, p := range e.files() {
		if used[p] {
			m.Log.Info("kept a file another entry uses", "path", p)
			continue
		}
		if err := f.Remove(filepath.Join(m.Boot, p)); err != nil {
			return err
		}
	}
	dir := filepath.Join(m.Boot, layer)
	if left, err := os.ReadDir(dir); (err == nil && len(left) == 0) || m.Dry != nil {
		if err := f.Remove(dir); err != nil {
			return err
		}
	} else if err == nil {
		m.Log.Info("kept the layer's kernel directory; it holds other files", "dir", dir)
	}
	m.Log.Info("boot entry removed", "layer", layer)
	return nil
}

// files returns the /boot-relative paths the entry boots from.
func (e Entry) files() []string {
	var out []string
	for _, p := range append([]string{e.Linux}, e.Initrd...) {
		if p != "" {
			out = append(out, path.Clean("/"+p))
		}
	}
	return out
}

// writeFragment renders grub/imgbase.cfg from entries (GRUB loaders only).
func (m *Manager) writeFragment(ctx context.Context, entries []Entry) error {
	if m.Loader != GrubMenu && m.Loader != GrubBLS {
		return nil
	}
	data := grubcfg.Render(m.fragment(ctx, entries))
	if old, err := os.ReadFile(m.fragmentPath()); err == nil && bytes.Equal(old, data) {
		return nil
	}
	return m.files().WriteFile(m.fragmentPath(), data, 0o644)
}

func (m *Manager) fragment(ctx context.Context, entries []Entry) grubcfg.Fragment {
	var f grubcfg.Fragment
	if m.Loader != GrubMenu {
		return f
	}
	f.BootUUID, f.FSModule = m.bootFS(ctx)
	f.Menu = []grubcfg.MenuEntry{}
	// Newest first, as GRUB menus usually are.
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		f.Menu = append(f.Menu, grubcfg.MenuEntry{
			ID: e.ID, Title: e.Title, Linux: e.Linux, Initrd: e.Initrd, Args: e.Args(),
		})
	}
	return f
}

// bootFS asks findmnt for the UUID and GRUB module of the /boot filesystem.
func (m *Manager) bootFS(ctx context.Context) (uuid, module string) {
	var f []string
	if m.BootFS != nil {
		if u, t, ok := m.BootFS(m.Boot); ok {
			f = []string{u, t}
		}
	}
	if f == nil {
		out, err := m.Run.Run(ctx, command.Read("findmnt", "-n", "-o", "UUID,FSTYPE", "--target", m.Boot))
		if err != nil {
			m.Log.Warn("cannot find the /boot filesystem UUID; the GRUB menu will not search for it", "err", err)
			return "", ""
		}
		f = strings.Fields(string(out))
	}
	if len(f) != 2 {
		return "", ""
	}
	switch f[1] {
	case "ext2", "ext3", "ext4":
		module = "ext2"
	case "xfs", "btrfs", "vfat":
		module = map[string]string{"xfs": "xfs", "btrfs": "btrfs", "vfat": "fat"}[f[1]]
	}
	return f[0], module
}

// PanicReboot is added to a trial layer's options unless a panic= is
// there already: a kernel that panics must reboot for GRUB to fall back.
const PanicReboot = "panic=10"

// It says whether it added it.
func withPanicReboot(carried, extra []string) ([]string, bool) {
	for _, a := range append(append([]string(nil), carried...), extra...) {
		if cmdline.Key(a) == "panic" {
			return extra, false
		}
	}
	return append(append([]string(nil), extra...), PanicReboot), true
}

// carried returns the running command line's arguments a new entry keeps.
// A layer booted by its trial runs with the PanicReboot imgbase gave the
// trial; once its entry is plain again (MarkGood), that argument is not
// the admin's and is not carried into other layers' entries.
func (m *Manager) carried(entries []Entry) []string {
	args := cmdline.Carry(m.readCmdline())
	e, ok := find(entries, m.running())
	if !ok {
		return args
	}
	if _, has := cmdline.Value(e.Args(), "panic"); has {
		return args
	}
	var out []string
	for _, a := range args {
		if a != PanicReboot {
			out = append(out, a)
		}
	}
	return out
}

// plainEntry takes the PanicReboot imgbase gave a trial out of layer's
// entry (and the GRUB menu) once the trial has succeeded: a good layer
// that panics later should stop at the panic for the admin to read, as
// any other layer does, not reboot in a loop.
func (m *Manager) plainEntry(ctx context.Context, layer string) error {
	entries, err := m.List()
	if err != nil {
		return err
	}
	e, ok := find(entries, layer)
	if !ok {
		return nil
	}
	var args []string
	for _, a := range cmdline.Split(e.Options) {
		if a != PanicReboot {
			args = append(args, a)
		}
	}
	if opts := strings.Join(args, " "); opts != e.Options {
		e.Options = opts
		data, err := e.Entry.Marshal()
		if err != nil {
			return err
		}
		// The entry first, then the menu rendered from it; each write is
		// atomic, and a crash between them leaves a menu 'check' reports
		// as stale and 'recover' re-renders.
		if err := m.files().WriteFile(e.Path, data, 0o644); err != nil {
			return err
		}
		for i := range entries {
			if entries[i].Layer == layer {
				entries[i] = e
			}
		}
		if err := m.writeFragment(ctx, entries); err != nil {
			return err
		}
		m.Log.Info("trial succeeded: the layer's entry no longer reboots on panic", "layer", layer)
	}
	return nil
}
