// Package kernel finds the kernel and initramfs a layer boots: in a /boot
// directory (the layer's own, or the host's top level), the newest
// "vmlinuz-<version>" that has an initramfs beside it, in Debian's
// ("initrd.img-<version>") or dracut's ("initramfs-<version>.img") naming.
package kernel

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
)

// Kernel is a kernel and its initramfs, as file names in one directory.
type Kernel struct {
	Version string
	Linux   string
	Initrd  string
}

// ErrNotFound means the directory holds no kernel with an initramfs.
var ErrNotFound = errors.New("no kernel with an initramfs")

// initrdNames are the initramfs names tried for a version, in order.
var initrdNames = []func(v string) string{
	func(v string) string { return "initrd.img-" + v },         // Debian initramfs-tools
	func(v string) string { return "initramfs-" + v + ".img" }, // dracut (Fedora, EL)
	func(v string) string { return "initrd-" + v },             // dracut elsewhere (SUSE)
}

// InitrdNames returns the names an initramfs of version may have, in the
// order they are tried.
func InitrdNames(version string) []string {
	var out []string
	for _, f := range initrdNames {
		out = append(out, f(version))
	}
	return out
}

// List returns every kernel in dir that has an initramfs, newest first.
// Rescue kernels are skipped: they are not the layer's kernel.
func List(dir string) ([]Kernel, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot look for kernels: %w", err)
	}
	have := map[string]bool{}
	for _, e := range ents {
		if e.Type().IsRegular() {
			have[e.Name()] = true
		}
	}
	var ks []Kernel
	for name := range have {
		v, ok := strings.CutPrefix(name, "vmlinuz-")
		if !ok || v == "" || strings.Contains(v, "rescue") {
			continue
		}
		for _, f := range initrdNames {
			if have[f(v)] {
				ks = append(ks, Kernel{Version: v, Linux: name, Initrd: f(v)})
				break
			}
		}
	}
	sort.Slice(ks, func(i, j int) bool {
		if c := Compare(ks[i].Version, ks[j].Version); c != 0 {
			return c > 0
		}
		return ks[i].Version > ks[j].Version
	})
	return ks, nil
}

// Newest returns the newest kernel in dir.
func Newest(dir string) (Kernel, error) {
	ks, err := List(dir)
	if err != nil {
		return Kernel{}, err
	}
	if len(ks) == 0 {
		return Kernel{}, fmt.Errorf("cannot find a kernel in %s: %w", dir, ErrNotFound)
	}
	return ks[0], nil
}

// Compare orders kernel versions the way rpm and dpkg agree on for them:
// runs of digits compare numerically, runs of letters lexically, and a
// version with more segments is newer ("6.1.0-18" < "6.1.0-18.1"); '~'
// sorts before everything, even the end ("6.1~rc1" < "6.1").
// It returns -1, 0 or 1.
func Compare(a, b string) int {
	for {
		a, b = trimSep(a), trimSep(b)
		ta, tb := strings.HasPrefix(a, "~"), strings.HasPrefix(b, "~")
		switch {
		case ta && tb:
			a, b = a[1:], b[1:]
			continue
		case ta:
			return -1
		case tb:
			return 1
		}
		if a == "" || b == "" {
			switch {
			case a == "" && b == "":
				return 0
			case a == "":
				return -1
			default:
				return 1
			}
		}
		sa, ra, numA := segment(a)
		sb, rb, numB := segment(b)
		if numA != numB {
			// A number is newer than letters, as in rpm.
			if numA {
				return 1
			}
			return -1
		}
		var c int
		if numA {
			sa, sb = strings.TrimLeft(sa, "0"), strings.TrimLeft(sb, "0")
			if c = cmpInt(len(sa), len(sb)); c == 0 {
				c = strings.Compare(sa, sb)
			}
		} else {
			c = strings.Compare(sa, sb)
		}
		if c != 0 {
			return c
		}
		a, b = ra, rb
	}
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func trimSep(s string) string {
	i := 0
	for i < len(s) && !isDigit(s[i]) && !isAlpha(s[i]) && s[i] != '~' {
		i++
	}
	return s[i:]
}

func segment(s string) (seg, rest string, numeric bool) {
	numeric = isDigit(s[0])
	i := 0
	for i < len(s) && (numeric && isDigit(s[i]) || !numeric && isAlpha(s[i])) {
		i++
	}
	return s[:i], s[i:], numeric
}
