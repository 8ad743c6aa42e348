package boot

import (
	"strconv"
	"strings"

	"github.com/imgbase/imgbase/internal/boot/kernel"
)

// LayerLess orders layer names "<name>-<version>-<release>+<N>" oldest
// first: by name, then version and release compared like rpm, then N.
// Names that do not parse sort before those that do, by plain comparison.
func LayerLess(a, b string) bool {
	na, va, ra, la, oka := splitLayer(a)
	nb, vb, rb, lb, okb := splitLayer(b)
	if oka != okb {
		return !oka
	}
	if !oka {
		return a < b
	}
	if na != nb {
		return na < nb
	}
	if c := kernel.Compare(va, vb); c != 0 {
		return c < 0
	}
	if c := kernel.Compare(ra, rb); c != 0 {
		return c < 0
	}
	return la < lb
}

func splitLayer(s string) (name, version, release string, n int, ok bool) {
	i := strings.LastIndexByte(s, '+')
	if i < 0 {
		return
	}
	n, err := strconv.Atoi(s[i+1:])
	if err != nil {
		return
	}
	nvr := s[:i]
	r := strings.LastIndexByte(nvr, '-')
	if r <= 0 {
		return
	}
	v := strings.LastIndexByte(nvr[:r], '-')
	if v <= 0 {
		return
	}
	return nvr[:v], nvr[v+1 : r], nvr[r+1:], n, true
}
