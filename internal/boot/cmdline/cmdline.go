// Package cmdline splits a kernel command line and builds the options of a
// layer's boot entry from the running one.
package cmdline

import (
	"strings"
)

// Split splits a kernel command line into arguments the way the kernel
// does: on spaces, with double quotes grouping (the quotes are kept, so
// Join(Split(s)) keeps the meaning).
func Split(s string) []string {
	var args []string
	var cur strings.Builder
	inQuote, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
			cur.WriteRune(r)
			have = true
		case !inQuote && (r == ' ' || r == '\t' || r == '\n'):
			if have {
				args = append(args, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		args = append(args, cur.String())
	}
	return args
}

// Key returns the part of an argument before '='.
func Key(arg string) string {
	k, _, _ := strings.Cut(arg, "=")
	return k
}

// perBoot are the arguments that name what is booted, not how: each layer's
// entry sets its own, so they are never carried over from the running one.
var perBoot = map[string]bool{
	"root":       true,
	"rd.lvm.lv":  true,
	"rd.lvm.vg":  true,
	"img.bootid": true,
	"BOOT_IMAGE": true,
	"initrd":     true,
}

// Carry returns the running command line's arguments that a new entry
// should keep: everything but root=, rd.lvm.lv=, rd.lvm.vg=, img.bootid=,
// BOOT_IMAGE= and initrd=, which the boot loader or the layer decide.
func Carry(running string) []string {
	var out []string
	for _, a := range Split(running) {
		if perBoot[Key(a)] {
			continue
		}
		out = append(out, a)
	}
	return out
}

// Layer returns the options of the entry booting lv of vg as layer:
// the root arguments, then carried, then extra; an extra argument replaces
// a carried one with the same key.
func Layer(vg, lv, layer string, carried, extra []string) string {
	args := []string{
		"root=/dev/" + vg + "/" + lv,
		"rd.lvm.lv=" + vg + "/" + lv,
		"img.bootid=" + layer,
	}
	override := map[string]bool{}
	for _, a := range extra {
		override[Key(a)] = true
	}
	for _, a := range carried {
		if !override[Key(a)] && !perBoot[Key(a)] {
			args = append(args, a)
		}
	}
	for _, a := range extra {
		if !perBoot[Key(a)] {
			args = append(args, a)
		}
	}
	return strings.Join(args, " ")
}

// Value returns the value of the last key=value argument in args.
func Value(args []string, key string) (string, bool) {
	val, found := "", false
	for _, a := range args {
		if k, v, ok := strings.Cut(a, "="); ok && k == key {
			val, found = strings.Trim(v, `"`), true
		}
	}
	return val, found
}
