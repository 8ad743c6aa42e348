package nvr

import (
	"slices"
	"strconv"
	"strings"
)

// Layer is a writable layer: the n-th snapshot line of a base, named
// "<base>+<n>". n starts at 1.
type Layer struct {
	Base NVR
	N    int
}

// String returns the layer's LV name.
func (l Layer) String() string { return LayerName(l.Base, l.N) }

// LayerName returns the name of layer n of base: "Base-1-0+1".
func LayerName(base NVR, n int) string {
	return base.String() + "+" + strconv.Itoa(n)
}

// ParseLayer splits a layer name "<NVR>+<n>" into its base and n. n is a
// decimal number >= 1 without leading zeros (so that every layer has one
// name), and the whole name must be a valid LV name.
func ParseLayer(s string) (base NVR, n int, err error) {
	fail := func(reason string) (NVR, int, error) {
		return NVR{}, 0, &NameError{Name: s, Kind: "layer name", Reason: reason}
	}
	p := strings.LastIndexByte(s, '+')
	if p < 0 {
		return fail("it has no '+<n>' suffix (want <NVR>+<n>, e.g. Base-1-0+1)")
	}
	num := s[p+1:]
	if num == "" || num[0] == '0' || strings.IndexFunc(num, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return fail("the layer number after '+' must be a whole number from 1, without leading zeros")
	}
	n, err = strconv.Atoi(num)
	if err != nil {
		return fail("the layer number is too large")
	}
	if r := lvNameProblem(s); r != "" {
		return fail(r)
	}
	if r := nvrProblem(s[:p]); r != "" {
		return fail("its base " + strconv.Quote(s[:p]) + " is not an NVR: " + r)
	}
	base, _ = Parse(s[:p])
	return base, n, nil
}

// IsLayerName reports whether s is a layer name "<NVR>+<n>".
func IsLayerName(s string) bool {
	_, _, err := ParseLayer(s)
	return err == nil
}

// CompareLayers orders layers by base (as Sort orders NVRs), then by
// number: Base-1-0+2 < Base-1-0+10 < Base-2-0+1.
func CompareLayers(a, b Layer) int {
	if c := compareTotal(a.Base, b.Base); c != 0 {
		return c
	}
	switch {
	case a.N < b.N:
		return -1
	case a.N > b.N:
		return 1
	}
	return 0
}

// SortLayers sorts layers oldest first by CompareLayers.
func SortLayers(ls []Layer) {
	slices.SortFunc(ls, CompareLayers)
}
