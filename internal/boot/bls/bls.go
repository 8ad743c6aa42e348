// Package bls reads and writes Boot Loader Specification Type #1 entries
// (the files in /boot/loader/entries) for imgbase's layers.
//
// One entry per layer. The layer itself is named in the kernel options as
// img.bootid=<layer>; the file name is only derived from it (FileName),
// because systemd-boot reads a file name ending in "+<digits>" as a boot
// counter and renames the file.
package bls

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Entry is one BLS Type #1 entry. Keys imgbase does not use are kept in
// Extra so that rewriting a foreign entry loses nothing.
type Entry struct {
	Title     string
	Version   string
	MachineID string
	SortKey   string
	Linux     string
	Initrd    []string
	// Options is the kernel command line; several "options" lines are
	// joined with one space, as the specification says.
	Options string
	Extra   []Field
}

// Field is a key and value of a key the Entry has no field for.
type Field struct{ Key, Value string }

// Parse reads an entry. Lines are "key value"; blank lines and lines
// starting with '#' are ignored.
func Parse(data []byte) (Entry, error) {
	var e Entry
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		key, val, _ := strings.Cut(strings.ReplaceAll(line, "\t", " "), " ")
		val = strings.TrimSpace(val)
		if strings.ContainsAny(line, "\x00\r") {
			return Entry{}, fmt.Errorf("cannot parse entry: line %d: control character", n+1)
		}
		switch key {
		case "title":
			e.Title = val
		case "version":
			e.Version = val
		case "machine-id":
			e.MachineID = val
		case "sort-key":
			e.SortKey = val
		case "linux":
			e.Linux = val
		case "initrd":
			e.Initrd = append(e.Initrd, val)
		case "options":
			if val != "" {
				if e.Options != "" {
					e.Options += " "
				}
				e.Options += val
			}
		default:
			e.Extra = append(e.Extra, Field{key, val})
		}
	}
	if e.Linux == "" {
		return Entry{}, errors.New("cannot parse entry: no linux line")
	}
	return e, nil
}

// Marshal renders the entry in a fixed key order.
func (e Entry) Marshal() ([]byte, error) {
	var b bytes.Buffer
	put := func(k, v string) error {
		if strings.ContainsAny(v, "\n\r\x00") {
			return fmt.Errorf("cannot write entry: %s value contains a line break or NUL", k)
		}
		if v != strings.TrimSpace(v) {
			return fmt.Errorf("cannot write entry: %s value has surrounding space", k)
		}
		b.WriteString(k)
		b.WriteByte(' ')
		b.WriteString(v)
		b.WriteByte('\n')
		return nil
	}
	var err error
	opt := func(k, v string) {
		if v != "" && err == nil {
			err = put(k, v)
		}
	}
	opt("title", e.Title)
	opt("version", e.Version)
	opt("machine-id", e.MachineID)
	opt("sort-key", e.SortKey)
	if e.Linux == "" {
		return nil, errors.New("cannot write entry: no linux")
	}
	opt("linux", e.Linux)
	for _, i := range e.Initrd {
		if err == nil {
			err = put("initrd", i)
		}
	}
	opt("options", e.Options)
	for _, f := range e.Extra {
		if f.Key == "" || strings.ContainsAny(f.Key, " \t\n\r\x00") || f.Key[0] == '#' {
			return nil, fmt.Errorf("cannot write entry: bad key %q", f.Key)
		}
		if err == nil {
			err = put(f.Key, f.Value)
		}
	}
	if err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Args returns the options split into words (no quoting is interpreted:
// imgbase never writes quoted arguments).
func (e Entry) Args() []string { return strings.Fields(e.Options) }

// BootIDKey is the kernel argument naming the layer an entry boots.
const BootIDKey = "img.bootid"

// Layer returns the layer the entry boots (its img.bootid= argument), or
// "" for an entry imgbase did not write.
func (e Entry) Layer() string {
	for _, a := range e.Args() {
		if v, ok := strings.CutPrefix(a, BootIDKey+"="); ok {
			return v
		}
	}
	return ""
}

// CheckLayerName rejects names that cannot be a file or directory name in
// /boot or a word in GRUB's script.
func CheckLayerName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\ \t\n\r\x00'\"$;{}`") {
		return fmt.Errorf("cannot use %q as a layer name in /boot", name)
	}
	return nil
}

// ID is the entry's identifier: the file name without ".conf". Every '+'
// of the layer name becomes '_', so "Base-1-0+1" is "Base-1-0_1": the
// name can then never end in "+<digits>", systemd-boot's boot counter.
// Two layers could only collide if one name had '_' where another has
// '+'; imgbase's layer names are "<NVR>+<N>", and a writer refuses to
// overwrite an entry of another layer.
func ID(layer string) string { return strings.ReplaceAll(layer, "+", "_") }

// FileName is the entry's file name in loader/entries.
func FileName(layer string) string { return ID(layer) + ".conf" }
