// Package boot makes every imgbase layer bootable and chooses which one boots.
//
// Vocabulary: a layer (e.g. "Base-1-0+1") boots through one entry, a BLS
// Type #1 file in <boot>/loader/entries, the source of truth; its kernel and
// initramfs are copied to <boot>/<layer>/. <boot> is /boot for GRUB; for
// systemd-boot it is the XBOOTLDR partition or else the ESP (see Locate),
// and loader.conf is on the ESP. The loader is what reads the
// entries: GRUB with blscfg reads them itself, GRUB without blscfg gets a
// menu rendered from them into <grub>/imgbase.cfg, which grub.cfg sources
// (Setup wires that once), systemd-boot reads them as they are. An entry's
// ID is what the loader calls it (grubenv values, loader.conf default).
//
// Selection: the default (saved_entry / loader.conf) boots unless a one-shot
// next entry is set. A new layer can be added in "try" mode: the next boot
// tries it once; if that boot reaches MarkGood (run by
// imgbase-boot-success.service), the layer becomes the default; if not, the
// boot after that falls back to the old default by itself. Status tells
// what happened and when.
//
// Lifecycle: New detects the loader; Setup wires it; AddLayer/RemoveLayer
// follow the layers; SetDefault, SetNext, Rollback select; MarkGood runs at
// every boot; Check and Recover repair drift. <boot> is a separate partition
// mounted at the Manager's Boot, so paths in entries are relative to it.
//
// What the initramfs needs to activate a layer (options written by AddLayer:
// root=/dev/<vg>/<lv> rd.lvm.lv=<vg>/<lv> img.bootid=<layer>):
//   - dracut (Fedora, EL): rd.lvm.lv= is required (without it, and without
//     rd.auto, dracut drops LVM activation); its lvm_scan.sh runs
//     "lvchange --yes -K -ay <vg>/<lv>", so only the booted layer is
//     activated, activation skip or not.
//   - Debian initramfs-tools: rd.lvm.lv= is ignored; udev's 69-lvm.rules
//     autoactivate the VG, which skips LVs flagged activation-skip, so every
//     layer must be "lvchange -kn" (measured, vm-notes.md); root= names the
//     LV to mount.
//
// A trial layer gets panic=10 (PanicReboot) unless a panic= is set: a
// panicking kernel must reboot for GRUB to fall back. A trial that hangs
// (emergency shell) falls back at the next reboot, whoever triggers it.
package boot

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/imgbase/imgbase/internal/boot/efivar"
	"github.com/imgbase/imgbase/internal/boot/grubcfg"
	"github.com/imgbase/imgbase/internal/command"
)

// Loader is the boot loader that reads the entries.
type Loader int

const (
	LoaderNone  Loader = iota // nothing recognised: entries only
	GrubMenu                  // GRUB without blscfg: imgbase renders the menu
	GrubBLS                   // GRUB with blscfg: reads the entries
	SystemdBoot               // systemd-boot: reads the entries
)

func (l Loader) String() string {
	switch l {
	case GrubMenu:
		return "grub"
	case GrubBLS:
		return "grub-blscfg"
	case SystemdBoot:
		return "systemd-boot"
	}
	return "none"
}

// ErrNoLoader is returned by selection when no boot loader was detected.
var ErrNoLoader = errors.New("no supported boot loader found (GRUB in /boot, or systemd-boot on an ESP mounted at /efi, /boot or /boot/efi)")

// ErrNoEntry is returned for a layer that has no boot entry.
var ErrNoEntry = errors.New("layer has no boot entry")

// Manager manages the entries and the selection under one /boot.
type Manager struct {
	// Boot is the mount point of the partition holding the entries and
	// the layers' kernels: /boot for GRUB; XBOOTLDR or else the ESP for
	// systemd-boot.
	Boot string
	// ESP is where systemd-boot's loader/loader.conf is; Boot when empty.
	ESP    string
	Loader Loader
	// GrubDir is the GRUB directory (Boot/grub or Boot/grub2) for the GRUB
	// loaders.
	GrubDir string
	Log     *slog.Logger
	// Run runs findmnt (the /boot UUID).
	Run command.Runner
	// EFI holds systemd-boot's one-shot choice (LoaderEntryOneShot).
	EFI EFIVars
	// BootFS, when set, reads the UUID and type of the filesystem holding
	// a directory without a process; ok false falls back on findmnt.
	BootFS func(dir string) (uuid, fstype string, ok bool)
	// Files changes /boot; Disk unless Dry is set.
	Files Files
	// Dry, when set, receives what would be written (files and EFI
	// variables) instead.
	Dry io.Writer
	// Cmdline is the running kernel's command line file.
	Cmdline string
	// BootIDPath is the kernel's per-boot id file.
	BootIDPath string
	Now        func() time.Time
	// Less orders layers oldest first; the default compares base NVRs and
	// layer numbers (see LayerLess). The caller may set layout's order.
	Less func(a, b string) bool
	// Guard, when set, is asked before Boot is read or written; an error
	// stops the operation (Boot is the root filesystem's own directory,
	// not the boot partition, because it is not mounted).
	Guard func() error
}

// Ready returns Guard's verdict: nil when Boot may be read and written.
func (m *Manager) Ready() error {
	if m.Guard == nil {
		return nil
	}
	return m.Guard()
}

// New returns a Manager for bootDir with its loader detected.
func New(bootDir string, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	loader, grubDir := Detect(bootDir)
	return NewAt(Places{Loader: loader, GrubDir: grubDir, Boot: bootDir}, log)
}

// NewAt returns a Manager for the places Locate found.
func NewAt(p Places, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Manager{
		Boot:       p.Boot,
		ESP:        p.ESP,
		Loader:     p.Loader,
		GrubDir:    p.GrubDir,
		Log:        log,
		Run:        command.Exec{Log: log},
		Files:      Disk{},
		EFI:        efivar.Store{Dir: efivar.Dir},
		Cmdline:    "/proc/cmdline",
		BootIDPath: "/proc/sys/kernel/random/boot_id",
		Now:        time.Now,
		Less:       LayerLess,
	}
}

// Detect finds the boot loader configured in bootDir: GRUB (grub2/ or
// grub/ with a grub.cfg, else a grub.cfg on the ESP at efi/EFI/<distro>/;
// blscfg or not), else systemd-boot (loader/loader.conf). EL8 on UEFI keeps
// its real grub.cfg and grubenv on the ESP; Debian, Fedora 34+ and EL9
// leave only a stub there that hands over to /boot's, which is skipped.
func Detect(bootDir string) (Loader, string) {
	dirs := []string{filepath.Join(bootDir, "grub2"), filepath.Join(bootDir, "grub")}
	esp, _ := filepath.Glob(filepath.Join(bootDir, "efi", "EFI", "*"))
	for _, dir := range append(dirs, esp...) {
		cfg, err := os.ReadFile(filepath.Join(dir, "grub.cfg"))
		if err != nil {
			continue
		}
		if grubcfg.HasBLS(cfg) {
			return GrubBLS, dir
		}
		if grubcfg.IsStub(cfg) {
			continue
		}
		return GrubMenu, dir
	}
	if _, err := os.Stat(filepath.Join(bootDir, "loader", "loader.conf")); err == nil {
		return SystemdBoot, ""
	}
	return LoaderNone, ""
}

func (m *Manager) files() Files {
	if m.Dry != nil {
		return Print{Out: m.Dry}
	}
	return m.Files
}

// EFIVars are the Boot Loader Interface's EFI variables (efivar.Store).
type EFIVars interface {
	// Get returns a variable; an error matching fs.ErrNotExist when unset.
	Get(name string) (string, error)
	Set(name, value string) error
	// Delete removes a variable; an unset one is fine.
	Delete(name string) error
}

// OneShotVar is the variable systemd-boot boots once and clears.
const OneShotVar = "LoaderEntryOneShot"

func (m *Manager) efi() EFIVars {
	if m.Dry != nil {
		return printVars{out: m.Dry, next: m.EFI}
	}
	return m.EFI
}

// printVars prints the changes a dry run would make; reads go through.
type printVars struct {
	out  io.Writer
	next EFIVars
}

func (p printVars) Get(name string) (string, error) { return p.next.Get(name) }
func (p printVars) Set(name, value string) error {
	_, err := fmt.Fprintf(p.out, "# set EFI variable %s-%s to %q\n", name, efivar.LoaderGUID, value)
	return err
}
func (p printVars) Delete(name string) error {
	_, err := fmt.Fprintf(p.out, "# remove EFI variable %s-%s\n", name, efivar.LoaderGUID)
	return err
}

func (m *Manager) entriesDir() string   { return filepath.Join(m.Boot, "loader", "entries") }
func (m *Manager) grubenvPath() string  { return resolved(filepath.Join(m.GrubDir, "grubenv")) }
func (m *Manager) fragmentPath() string { return filepath.Join(m.GrubDir, grubcfg.FileName) }
func (m *Manager) grubCfgPath() string  { return resolved(filepath.Join(m.GrubDir, "grub.cfg")) }

// resolved follows a symlink at p (EL8 and older Fedora on UEFI link
// /boot/grub2/grubenv to the ESP's): GRUB reads the target, and writing
// by rename would replace the link with a file GRUB never reads.
func resolved(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

func (m *Manager) loaderConf() string {
	esp := m.ESP
	if esp == "" {
		esp = m.Boot
	}
	return filepath.Join(esp, "loader", "loader.conf")
}
func (m *Manager) statusPath() string { return filepath.Join(m.Boot, "loader", "imgbase-status.json") }

// running returns the layer the system booted (img.bootid=), or "".
func (m *Manager) running() string {
	data, err := os.ReadFile(m.Cmdline)
	if err != nil {
		return ""
	}
	for _, a := range strings.Fields(string(data)) {
		if v, ok := strings.CutPrefix(a, "img.bootid="); ok {
			return v
		}
	}
	return ""
}

// Running returns the layer the system booted, from img.bootid= on the
// kernel command line, or "" when it was not booted from a layer.
func (m *Manager) Running() string { return m.running() }

func (m *Manager) readCmdline() string {
	data, err := os.ReadFile(m.Cmdline)
	if err != nil {
		m.Log.Warn("cannot read the running kernel command line; nothing carried over", "err", err)
		return ""
	}
	return strings.TrimSpace(string(data))
}

func (m *Manager) now() time.Time {
	if m.Now == nil {
		return time.Now()
	}
	return m.Now()
}

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("cannot %s: %w", what, err)
}
