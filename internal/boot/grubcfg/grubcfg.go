// Package grubcfg renders the GRUB configuration fragment imgbase owns
// (grub/imgbase.cfg) and wires grub.cfg to source it.
//
// The fragment always carries the selection script: one-shot next_entry,
// then the boot-counting "try" state machine, then saved_entry (see
// Select, the Go model of the same script). On a GRUB without blscfg
// (Debian) it also carries one menuentry per layer, rendered from the BLS
// entries; with blscfg (Fedora, EL) GRUB reads the entries itself.
package grubcfg

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/imgbase/imgbase/internal/command"
)

// The grubenv variables the script and imgbase share.
const (
	SavedEntry = "saved_entry" // the default: last good, or chosen
	NextEntry  = "next_entry"  // boot once, cleared by the script
	TryEntry   = "try_entry"   // the layer on trial
	BootStatus = "boot_status" // "", StatusTry, StatusTrying or StatusFailed
)

// The values of BootStatus.
const (
	// StatusTry: imgbase armed TryEntry; the next boot tries it.
	StatusTry = "try"
	// StatusTrying: GRUB booted TryEntry; userspace must mark it good
	// before the next boot.
	StatusTrying = "trying"
	// StatusFailed: a boot found StatusTrying, so the trial never
	// reached success; GRUB booted saved_entry instead.
	StatusFailed = "failed"
)

// FileName is the fragment's name in the GRUB directory.
const FileName = "imgbase.cfg"

// Fragment is what the rendered file contains.
type Fragment struct {
	// BootUUID is the filesystem UUID of /boot, searched so that the
	// kernels are found whatever GRUB's root was. Empty: not searched.
	BootUUID string
	// FSModule is the GRUB module reading /boot ("ext2", "xfs").
	FSModule string
	// Menu holds one entry per layer; nil on a GRUB with blscfg.
	Menu []MenuEntry
}

// MenuEntry is one layer's menu entry.
type MenuEntry struct {
	ID     string // the menuentry --id, what grubenv names
	Title  string
	Linux  string // path on /boot
	Initrd []string
	Args   []string
}

// Script is the selection script. Every branch saves at most one variable,
// so a power loss leaves grubenv either before or after that one write.
// If grub.cfg already consumed a one-shot entry itself (Debian's and
// Fedora's headers set boot_once), the choice it made stands.
const Script = `if [ -s "${prefix}/grubenv" ]; then
  load_env
fi
if [ -n "${next_entry}" ]; then
  set default="${next_entry}"
  set next_entry=
  save_env next_entry
  set boot_once=true
fi
if [ "${boot_once}" != "true" ]; then
  if [ "${boot_status}" = "try" -a -n "${try_entry}" ]; then
    set default="${try_entry}"
    set boot_status=trying
    save_env boot_status
  elif [ "${boot_status}" = "trying" ]; then
    set default="${saved_entry}"
    set boot_status=failed
    save_env boot_status
  elif [ -n "${saved_entry}" ]; then
    set default="${saved_entry}"
  fi
fi
`

// Render returns the fragment's text.
func Render(f Fragment) []byte {
	var b bytes.Buffer
	b.WriteString("# Written by imgbase from /loader/entries. Do not edit: it is rewritten\n")
	b.WriteString("# whenever a layer is added or removed (imgbase boot --setup).\n")
	if f.Menu != nil {
		b.WriteString("insmod part_msdos\ninsmod part_gpt\n")
		mod := f.FSModule
		if mod == "" {
			mod = "ext2"
		}
		fmt.Fprintf(&b, "insmod %s\n", mod)
		if f.BootUUID != "" {
			fmt.Fprintf(&b, "search --no-floppy --fs-uuid --set=root %s\n", Quote(f.BootUUID))
		}
	}
	b.WriteString(Script)
	for _, m := range f.Menu {
		fmt.Fprintf(&b, "menuentry %s --id %s {\n", Quote(m.Title), Quote(m.ID))
		line := append([]string{"linux", m.Linux}, m.Args...)
		b.WriteString("  " + command.Join(line) + "\n")
		if len(m.Initrd) > 0 {
			b.WriteString("  " + command.Join(append([]string{"initrd"}, m.Initrd...)) + "\n")
		}
		b.WriteString("}\n")
	}
	return b.Bytes()
}

// Quote makes s one word of GRUB's script language. GRUB's lexer takes
// single quotes as the POSIX shell does, so the shell's rule serves both.
func Quote(s string) string { return command.Quote(s) }

// The block Wire puts into grub.cfg.
const (
	beginMarker = "### BEGIN imgbase ###"
	endMarker   = "### END imgbase ###"
	Block       = beginMarker + "\n" +
		`if [ -f "${prefix}/` + FileName + `" ]; then source "${prefix}/` + FileName + `"; fi` + "\n" +
		endMarker + "\n"
)

// Wire returns grub.cfg with the imgbase block appended, or the existing
// block replaced by the current one, and whether anything changed. The
// block goes last so that the fragment's default wins over the header's.
func Wire(cfg []byte) ([]byte, bool) {
	s := string(cfg)
	if i := strings.Index(s, beginMarker); i >= 0 {
		if j := strings.Index(s[i:], endMarker); j >= 0 {
			end := i + j + len(endMarker)
			if end < len(s) && s[end] == '\n' {
				end++
			}
			out := s[:i] + Block + s[end:]
			return []byte(out), out != s
		}
	}
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return []byte(s + Block), true
}

// Wired reports whether grub.cfg sources the fragment.
func Wired(cfg []byte) bool { return bytes.Contains(cfg, []byte(Block)) }

// HasBLS reports whether grub.cfg reads BLS entries itself.
func HasBLS(cfg []byte) bool {
	for _, line := range strings.Split(string(cfg), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == "blscfg" {
			return true
		}
	}
	return false
}

// IsStub reports whether cfg only hands over to another grub.cfg (the
// ESP's on Debian, Fedora 34+ and EL9): a configfile command and no menu
// of its own.
func IsStub(cfg []byte) bool {
	stub := false
	for _, line := range strings.Split(string(cfg), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case f[0] == "menuentry", f[0] == "submenu", f[0] == "blscfg":
			return false
		case f[0] == "configfile":
			stub = true
		}
	}
	return stub
}
