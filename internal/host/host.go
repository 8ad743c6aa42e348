// Package host carries out imgbase's verbs on a machine: it reads the
// layout with one lvs call, checks every name and refusal before anything
// runs, then drives lvm2 and the filesystem tools. Each mutating verb either
// completes or undoes, in reverse order, what it had created.
package host

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/imgbase/imgbase/internal/atomicfile"
	"github.com/imgbase/imgbase/internal/command"
	"github.com/imgbase/imgbase/internal/filesystem"
	"github.com/imgbase/imgbase/internal/hooks"
	"github.com/imgbase/imgbase/internal/layout"
	"github.com/imgbase/imgbase/internal/lvm"
)

// NVRFile is where an image keeps its own name-version-release.
const NVRFile = "usr/share/imgbase/build/meta/nvr"

// Booter keeps one boot entry per layer. Its implementation lives in the
// boot package; Host only says when a layer comes and goes.
type Booter interface {
	// AddLayer writes the boot entry of a layer whose root is mounted at
	// mnt. try asks for a first boot in try mode.
	AddLayer(ctx context.Context, l BootLayer) error
	// RemoveLayer removes the entry of a layer and the files only it used.
	RemoveLayer(ctx context.Context, name string) error
	// Setup wires the boot loader to read imgbase's entries.
	Setup(ctx context.Context) error
	// Default is the layer that boots by default, "" when none.
	Default() (string, error)
}

// BootLayer describes a layer to the Booter.
type BootLayer struct {
	Name   string // the layer, e.g. Base-1-0+1
	Base   string // its base's NVR
	VG     string
	Dev    string // /dev/VG/LV
	Mnt    string // where the layer's root is mounted now
	Try    bool
	Latest bool // the layer becomes the default
}

// Host is the machine imgbase manages.
type Host struct {
	Run command.Runner
	Log *slog.Logger
	// Out receives what a dry run would write to files.
	Out io.Writer
	// Root is the running system's root directory ("/" except in tests).
	Root string
	// RootDevice returns the kernel device number of the running /.
	RootDevice func() (major, minor int, err error)
	// RootFSType returns the filesystem type of the running / (used by dry
	// runs, which cannot probe an LV that does not exist yet).
	RootFSType func() string
	// MountDir is where layers are mounted while imgbase prepares them.
	MountDir string
	Boot     Booter
	// Hooks, when set, runs the admin's executables around each verb.
	Hooks *hooks.Hooks
	// Self is the imgbase executable copied into layers whose image lacks
	// one; "" means the running one.
	Self string
}

func (h *Host) lvm() lvm.Client               { return lvm.Client{Run: h.Run} }
func (h *Host) fs() filesystem.Tools          { return filesystem.Tools{Run: h.Run} }
func (h *Host) dry() bool                     { return command.IsDry(h.Run) }
func (h *Host) path(p string) string          { return filepath.Join(h.Root, p) }
func (h *Host) mountPoint(name string) string { return filepath.Join(h.MountDir, name) }

// Layout reads the whole layout with one lvs call.
func (h *Host) Layout(ctx context.Context) (*layout.Tree, error) {
	lvs, err := h.lvm().Report(ctx)
	if err != nil {
		return nil, err
	}
	return layout.Build(lvs)
}

// managed reads the layout and fails when the host is not initialised.
func (h *Host) managed(ctx context.Context) (*layout.Tree, error) {
	t, err := h.Layout(ctx)
	if err != nil {
		return nil, err
	}
	if !t.Initialized() {
		return nil, layout.ErrNotInitialized
	}
	if t.Pool == nil {
		return nil, fmt.Errorf("cannot find the thin pool of %s: tag it with 'lvchange --addtag %s %s/POOL'", t.VG, lvm.TagPool, t.VG)
	}
	return t, nil
}

// CurrentLayer returns the running layer in t, or nil.
func (h *Host) CurrentLayer(t *layout.Tree) *layout.Layer {
	if h.RootDevice == nil {
		return nil
	}
	major, minor, err := h.RootDevice()
	if err != nil {
		h.Log.Debug("cannot tell the root device", "err", err)
		return nil
	}
	return t.Current(major, minor)
}

// writeFile writes a file atomically, or says what it would write in a dry run.
func (h *Host) writeFile(path string, data []byte, perm os.FileMode) error {
	if h.dry() {
		fmt.Fprintf(h.Out, "# write %s\n", path)
		return nil
	}
	return atomicfile.Write(path, data, perm)
}

func (h *Host) mkdir(path string) error {
	if h.dry() {
		return nil
	}
	if err := os.MkdirAll(path, 0o700); err != nil {
		return fmt.Errorf("cannot create %s: %w", path, err)
	}
	return nil
}

// readNVRFile reads an image's NVR from its build metadata under root.
func readNVRFile(root string) (string, error) {
	data, err := os.ReadFile(filepath.Join(root, NVRFile))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(data)), nil
}
