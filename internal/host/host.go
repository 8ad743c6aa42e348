// Package host carries out imgbase's verbs on a machine: it reads the
// layout with one lvs call, checks every name and refusal before anything
// runs, then drives lvm2 and the filesystem tools. Each mutating verb either
// completes or undoes, in reverse order, what it had created.
package host

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/imgbase/imgbase/internal/hooks"
	"github.com/imgbase/imgbase/internal/system"
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
	system.System
	Boot Booter
	// Hooks, when set, runs the admin's executables around each verb.
	Hooks *hooks.Hooks
	// Self is the imgbase executable copied into layers whose image lacks
	// one; "" means the running one.
	Self string
}

// readNVRFile reads an image's NVR from its build metadata under root.
func readNVRFile(root string) (string, error) {
	data, err := os.ReadFile(filepath.Join(root, NVRFile))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(data)), nil
}
