// Package nvr names imgbase's volumes and orders them.
//
// A base is named by an NVR, "name-version-release" as in RPM
// (Base-1-0, ovirt-node-ng-4.4.10-0.20220303.0); a layer is named
// "<base>+<n>" with n = 1, 2, … (Base-1-0+1). Both names are used
// verbatim as LVM LV names, so an NVR is only accepted when it is also a
// valid LV name, and '+' is kept for the layer suffix: a name with '+' is
// never a base, which makes base and layer names unambiguous.
//
// Bases are ordered by Compare: name bytewise, then version and release
// with rpm's rpmvercmp (VerCmp).
package nvr

import (
	"slices"
	"strings"
)

// NVR is a base's name-version-release. The zero value is not a valid NVR.
type NVR struct {
	Name    string
	Version string
	Release string
}

// String returns "name-version-release", the base's LV name.
func (n NVR) String() string { return n.Name + "-" + n.Version + "-" + n.Release }

// Parse splits s into name, version and release: version and release are
// the last two dash-separated fields, the name is the rest and may itself
// contain dashes. Each part must be non-empty, the name must start with a
// letter or digit, '+' is not allowed (it marks layers), and s must be a
// valid LV name (ValidLVName).
//
// Parse accepts every existing base; before creating a new one also check
// ValidBaseName, which leaves room for its layer names. Because an NVR is
// an LV name, rpm's '~' and '^' cannot appear in one (lvm2 rejects them);
// VerCmp still orders them for versions that are not LV names.
func Parse(s string) (NVR, error) {
	if r := nvrProblem(s); r != "" {
		return NVR{}, &NameError{Name: s, Kind: "NVR", Reason: r}
	}
	r := strings.LastIndexByte(s, '-')
	v := strings.LastIndexByte(s[:r], '-')
	return NVR{Name: s[:v], Version: s[v+1 : r], Release: s[r+1:]}, nil
}

func nvrProblem(s string) string {
	const want = " (want name-version-release, e.g. Base-1-0)"
	if strings.Contains(s, "+") {
		return "'+' is reserved for layer names (<NVR>+<n>)"
	}
	if r := lvNameProblem(s); r != "" {
		return r
	}
	r := strings.LastIndexByte(s, '-')
	if r < 0 {
		return "it has no dashes" + want
	}
	v := strings.LastIndexByte(s[:r], '-')
	switch {
	case v < 0:
		return "it has only one dash" + want
	case r == len(s)-1:
		return "the release is empty" + want
	case v == r-1:
		return "the version is empty" + want
	case v == 0:
		return "the name is empty" + want
	case !isAlnum(s[0]):
		return "the name must start with a letter or digit"
	}
	return ""
}

// Compare orders NVRs: by name (bytewise), then version, then release,
// each with VerCmp. It returns -1, 0 or 1. Like rpm it returns 0 for
// NVRs that differ only in separators ("B-1.0-1" and "B-1_0-1"); Sort
// breaks such ties.
func Compare(a, b NVR) int {
	if c := strings.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	if c := VerCmp(a.Version, b.Version); c != 0 {
		return c
	}
	return VerCmp(a.Release, b.Release)
}

// Sort sorts ns oldest first by Compare; NVRs that Compare calls equal
// are ordered by their String, so the result never depends on the input
// order.
func Sort(ns []NVR) {
	slices.SortFunc(ns, compareTotal)
}

// Latest returns the newest NVR named name among ns, and false when there
// is none. With name "" every NVR counts, and between different names the
// bytewise-last name wins, as in Sort.
func Latest(ns []NVR, name string) (NVR, bool) {
	var best NVR
	found := false
	for _, n := range ns {
		if name != "" && n.Name != name {
			continue
		}
		if !found || compareTotal(n, best) > 0 {
			best, found = n, true
		}
	}
	return best, found
}

func compareTotal(a, b NVR) int {
	if c := Compare(a, b); c != 0 {
		return c
	}
	return strings.Compare(a.String(), b.String())
}
