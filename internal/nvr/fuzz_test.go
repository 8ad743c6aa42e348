package nvr

import (
	"strconv"
	"testing"
)

// FuzzParse: whatever Parse accepts is a valid LV name, prints back to
// its input, and its layer names parse back to it.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"Base-1-0", "ovirt-node-ng-4.4.10-0.20220303.0", "a-b-c-d", "Base-1-0+1", "Base--0",
		"-1-0", "snapshot-1-0", "x_tdata-1-0", "Base-1.0~rc1-0", "Base-1-", "x", "",
	} {
		f.Add(s, 1)
	}
	f.Fuzz(func(t *testing.T, s string, k int) {
		n, err := Parse(s)
		if err != nil {
			if _, _, lerr := ParseLayer(s + "+1"); lerr == nil {
				t.Fatalf("%q is no NVR but %q is a layer name", s, s+"+1")
			}
			return
		}
		if n.String() != s {
			t.Fatalf("Parse(%q).String() = %q", s, n.String())
		}
		if err := ValidLVName(s); err != nil {
			t.Fatalf("Parse accepted %q: %v", s, err)
		}
		if n2, err := Parse(n.String()); err != nil || n2 != n {
			t.Fatalf("reparse of %q = %v, %v", s, n2, err)
		}
		if IsLayerName(s) {
			t.Fatalf("%q is both an NVR and a layer name", s)
		}
		if k < 1 {
			return
		}
		ln := LayerName(n, k)
		lvErr := ValidLVName(ln)
		if lvErr != nil && ValidBaseName(s) == nil && k <= MaxLayer {
			t.Fatalf("base %q passed ValidBaseName but its layer %d is no LV name: %v", s, k, lvErr)
		}
		base, got, err := ParseLayer(ln)
		if lvErr != nil {
			if err == nil {
				t.Fatalf("ParseLayer accepted invalid LV name %q", ln)
			}
			return
		}
		if err != nil || base != n || got != k {
			t.Fatalf("ParseLayer(%q) = %v, %d, %v", ln, base, got, err)
		}
	})
}

// FuzzCompare: VerCmp (and so Compare) must be a consistent ordering, or
// sorting bases gives nonsense: reflexive, antisymmetric, transitive.
func FuzzCompare(f *testing.F) {
	for _, c := range rpmCases {
		f.Add(c.a, c.b, c.a+"~")
	}
	f.Add("1.0^", "1.0", "1.0.1")
	f.Add("1~", "", "^")
	f.Add("1a", "1.1", "1^a")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		for _, s := range []string{a, b, c} {
			if VerCmp(s, s) != 0 {
				t.Fatalf("VerCmp(%q, itself) != 0", s)
			}
		}
		ab, ba := VerCmp(a, b), VerCmp(b, a)
		if ab != -ba || ab < -1 || ab > 1 {
			t.Fatalf("VerCmp(%q, %q) = %d but reversed = %d", a, b, ab, ba)
		}
		bc, ac := VerCmp(b, c), VerCmp(a, c)
		if ab <= 0 && bc <= 0 && ac > 0 {
			t.Fatalf("not transitive: %q <= %q <= %q but VerCmp(a, c) = %d", a, b, c, ac)
		}
		if ab >= 0 && bc >= 0 && ac < 0 {
			t.Fatalf("not transitive: %q >= %q >= %q but VerCmp(a, c) = %d", a, b, c, ac)
		}
		// The same through Compare on NVRs whose versions these are, when
		// they are valid NVR parts.
		var ns []NVR
		for i, v := range []string{a, b, c} {
			n, err := Parse("x-" + v + "-" + strconv.Itoa(i%2))
			if err != nil {
				return
			}
			ns = append(ns, n)
		}
		if Compare(ns[0], ns[1]) != -Compare(ns[1], ns[0]) {
			t.Fatalf("Compare not antisymmetric on %v, %v", ns[0], ns[1])
		}
	})
}
