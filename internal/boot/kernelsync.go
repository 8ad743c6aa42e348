package boot

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/imgbase/imgbase/internal/boot/cmdline"
	"github.com/imgbase/imgbase/internal/boot/kernel"
)

// KernelChange is what a distribution's kernel hook reports from inside a
// layer: a kernel installed or an initramfs rebuilt (Version set, Removed
// false), a kernel removed (Removed), or nothing named (an admin syncing
// by hand: the newest kernel the layer has).
//
// The hooks write into the shared /boot partition, which is mounted over
// the layer's own /boot directory: a new vmlinuz-<version> and
// initrd.img-<version> land in /boot's top level, which no layer's entry
// boots. Those top-level files are shared by every layer that installs the
// same version, so only the version a hook names was just written by the
// running layer; the others may be another layer's.
type KernelChange struct {
	Layer   string // the running layer
	Version string
	Removed bool
	// SrcDir is where the hooks wrote the files (the top level of Boot).
	SrcDir string
	// Installed reports whether the layer has version's modules, so that
	// a kernel another layer installed is never taken for this one's.
	Installed func(version string) bool
}

// KernelSync is what SyncKernel did.
type KernelSync struct {
	Layer   string `json:"layer"`
	From    string `json:"from"`    // the kernel version the entry booted
	To      string `json:"to"`      // the one it boots now
	Changed bool   `json:"changed"` // whether a file or the entry changed
	Reason  string `json:"reason"`
}

// SyncKernel makes the running layer's entry follow a kernel change made
// inside it: the kernel and initramfs are copied to <boot>/<layer>/ and
// the entry (and GRUB menu) rewritten, leaving every other layer's files
// and entry alone. Each step is atomic on its own and ordered so that a
// crash leaves a bootable entry: the files are copied first (a file the
// entry already names is replaced by rename), then the entry, then the
// menu, and only then are files no entry names any more removed.
//
// A hook naming a version older than the entry's, or one the layer does
// not have, changes nothing: a layer boots its newest kernel.
func (m *Manager) SyncKernel(ctx context.Context, c KernelChange) (KernelSync, error) {
	res := KernelSync{Layer: c.Layer}
	entries, err := m.List()
	if err != nil {
		return res, err
	}
	e, ok := find(entries, c.Layer)
	if !ok {
		return res, fmt.Errorf("cannot follow the kernel change in %s: %w", c.Layer, ErrNoEntry)
	}
	cur := e.kernelVersion()
	res.From, res.To = cur, cur
	installed := c.Installed
	if installed == nil {
		installed = func(string) bool { return true }
	}

	target := ""
	switch {
	case c.Removed:
		if c.Version != cur {
			res.Reason = fmt.Sprintf("the entry boots %s, not the removed %s", cur, c.Version)
			return res, nil
		}
		target = m.newestKernel(c, e, func(v string) bool { return v != c.Version && installed(v) })
		if target == "" {
			res.Reason = fmt.Sprintf("no other kernel of the layer to boot; the entry keeps its copy of %s", cur)
			m.Log.Warn("the kernel the layer boots was removed and no other is installed; its entry keeps booting its copy", "layer", c.Layer, "kernel", cur)
			return res, nil
		}
	case c.Version != "":
		if !installed(c.Version) {
			res.Reason = fmt.Sprintf("the layer has no modules of %s", c.Version)
			return res, nil
		}
		if cur != "" && kernel.Compare(c.Version, cur) < 0 {
			res.Reason = fmt.Sprintf("the entry boots the newer %s", cur)
			return res, nil
		}
		target = c.Version
	default:
		target = m.newestKernel(c, e, installed)
		if target == "" {
			return res, fmt.Errorf("cannot follow the kernel change in %s: no kernel with an initramfs whose modules the layer has in %s", c.Layer, c.SrcDir)
		}
	}

	linux, initrd := m.kernelFiles(c, e, target)
	if linux == "" || initrd == "" {
		return res, fmt.Errorf("cannot follow the kernel change in %s: no vmlinuz-%s with its initramfs in %s", c.Layer, target, c.SrcDir)
	}
	f := m.files()
	dir := filepath.Join(m.Boot, c.Layer)
	if err := f.MkdirAll(dir); err != nil {
		return res, err
	}
	for _, src := range []string{linux, initrd} {
		dst := filepath.Join(dir, filepath.Base(src))
		if src == dst || sameContent(src, dst) {
			continue
		}
		if err := f.CopyFile(dst, src); err != nil {
			return res, err
		}
		res.Changed = true
		m.Log.Info("copied into the layer's boot directory", "layer", c.Layer, "file", dst)
	}
	res.To = target
	ne := e
	ne.Version = target
	ne.Linux = path.Join("/", c.Layer, filepath.Base(linux))
	ne.Initrd = []string{path.Join("/", c.Layer, filepath.Base(initrd))}
	if ne.Version != e.Version || ne.Linux != e.Linux || strings.Join(ne.Initrd, " ") != strings.Join(e.Initrd, " ") {
		data, err := ne.Entry.Marshal()
		if err != nil {
			return res, err
		}
		if err := f.WriteFile(e.Path, data, 0o644); err != nil {
			return res, err
		}
		res.Changed = true
		m.Log.Info("boot entry follows the layer's kernel", "layer", c.Layer, "from", cur, "to", target)
	}
	for i := range entries {
		if entries[i].Layer == c.Layer {
			entries[i] = ne
		}
	}
	if err := m.writeFragment(ctx, entries); err != nil {
		return res, err
	}
	if err := m.removeUnused(e, entries); err != nil {
		return res, err
	}
	switch {
	case !res.Changed:
		res.Reason = "the layer's copies are up to date"
	case c.Removed:
		res.Reason = fmt.Sprintf("%s was removed", cur)
	case target != cur:
		res.Reason = "a newer kernel was installed"
	default:
		res.Reason = "its kernel or initramfs changed"
	}
	return res, nil
}

// kernelVersion is the kernel version the entry boots: its version key,
// else what its vmlinuz name says.
func (e Entry) kernelVersion() string {
	if e.Version != "" {
		return e.Version
	}
	v, _ := strings.CutPrefix(path.Base(e.Linux), "vmlinuz-")
	return v
}

// kernelFiles finds the vmlinuz and initramfs of version: those the hooks
// wrote to SrcDir, else, for the version the entry boots already, the
// entry's own copies (update-initramfs rebuilds only the initramfs, and a
// layer made from an image has its vmlinuz only in its hidden /boot).
func (m *Manager) kernelFiles(c KernelChange, e Entry, version string) (linux, initrd string) {
	regular := func(p string) bool {
		st, err := os.Stat(p)
		return err == nil && st.Mode().IsRegular()
	}
	if p := filepath.Join(c.SrcDir, "vmlinuz-"+version); regular(p) {
		linux = p
	}
	for _, name := range kernel.InitrdNames(version) {
		if p := filepath.Join(c.SrcDir, name); regular(p) {
			initrd = p
			break
		}
	}
	if version == e.kernelVersion() {
		if p := filepath.Join(m.Boot, path.Clean("/"+e.Linux)); linux == "" && e.Linux != "" && regular(p) {
			linux = p
		}
		if initrd == "" && len(e.Initrd) > 0 {
			if p := filepath.Join(m.Boot, path.Clean("/"+e.Initrd[0])); regular(p) {
				initrd = p
			}
		}
	}
	return linux, initrd
}

// newestKernel returns the newest version ok accepts that has both files,
// among those in SrcDir and the one the entry boots.
func (m *Manager) newestKernel(c KernelChange, e Entry, ok func(string) bool) string {
	versions := map[string]bool{}
	if v := e.kernelVersion(); v != "" {
		versions[v] = true
	}
	if ents, err := os.ReadDir(c.SrcDir); err == nil {
		for _, d := range ents {
			if v, has := strings.CutPrefix(d.Name(), "vmlinuz-"); has && v != "" && !strings.Contains(v, "rescue") {
				versions[v] = true
			}
		}
	}
	best := ""
	for v := range versions {
		if !ok(v) {
			continue
		}
		if l, i := m.kernelFiles(c, e, v); l == "" || i == "" {
			continue
		}
		if best == "" || kernel.Compare(v, best) > 0 {
			best = v
		}
	}
	return best
}

// KernelCmdlinePath is where Debian's and systemd's kernel-install read the
// options of the entries they write, relative to the root.
const KernelCmdlinePath = "etc/kernel/cmdline"

// KernelCmdline returns what a layer's /etc/kernel/cmdline holds: the
// options its entry gets (root=, rd.lvm.lv= and img.bootid= naming the
// layer, the running command line's other arguments), so that kernel-install
// run inside the layer writes an entry booting that layer and not the LV
// the file was copied from. A trial's PanicReboot is imgbase's, not the
// layer's, and is left out.
func (m *Manager) KernelCmdline(vg, lv, layer string) string {
	entries, err := m.List()
	if err != nil {
		entries = nil
	}
	var args []string
	for _, a := range m.carried(entries) {
		if a != PanicReboot {
			args = append(args, a)
		}
	}
	return cmdline.Layer(vg, lv, layer, args, nil) + "\n"
}
