package nvr

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestLayerName(t *testing.T) {
	b := mustParse(t, "Base-1-0")
	if got := LayerName(b, 1); got != "Base-1-0+1" {
		t.Errorf("LayerName = %q", got)
	}
	if got := (Layer{Base: b, N: 12}).String(); got != "Base-1-0+12" {
		t.Errorf("Layer.String = %q", got)
	}
}

func TestParseLayer(t *testing.T) {
	for _, c := range []struct {
		in   string
		base string
		n    int
	}{
		{"Base-1-0+1", "Base-1-0", 1},
		{"ovirt-node-ng-4.4.10-0.20220303.0+1", "ovirt-node-ng-4.4.10-0.20220303.0", 1},
		{"Base-1-0+9999", "Base-1-0", 9999},
		{"Base-1-0+10000", "Base-1-0", 10000}, // above MaxLayer is still a name
	} {
		base, n, err := ParseLayer(c.in)
		if err != nil {
			t.Errorf("ParseLayer(%q): %v", c.in, err)
			continue
		}
		if base.String() != c.base || n != c.n {
			t.Errorf("ParseLayer(%q) = %v, %d; want %s, %d", c.in, base, n, c.base, c.n)
		}
		if !IsLayerName(c.in) {
			t.Errorf("IsLayerName(%q) = false", c.in)
		}
	}
}

func TestParseLayerRejects(t *testing.T) {
	for _, c := range []struct{ in, reason string }{
		{"Base-1-0", "no '+<n>' suffix"},
		{"Base-1-0+", "whole number"},
		{"Base-1-0+0", "whole number"},
		{"Base-1-0+01", "without leading zeros"},
		{"Base-1-0+-1", "whole number"},
		{"Base-1-0+1a", "whole number"},
		{"Base-1-0+99999999999999999999", "too large"},
		{"Base-1-0+1+2", `its base "Base-1-0+1" is not an NVR`},
		{"Base-1+1", `its base "Base-1" is not an NVR: it has only one dash`},
		{"+1", `its base "" is not an NVR`},
		{"Base-1.0~rc1-0+1", `character '~'`},
		{strings.Repeat("n", 122) + "-1-0+1", "too long"},
	} {
		_, _, err := ParseLayer(c.in)
		var ne *NameError
		if !errors.As(err, &ne) || ne.Kind != "layer name" {
			t.Errorf("ParseLayer(%q) error = %v, want a layer *NameError", c.in, err)
			continue
		}
		if !strings.Contains(err.Error(), c.reason) {
			t.Errorf("ParseLayer(%q) error %q, want it to contain %q", c.in, err, c.reason)
		}
		if IsLayerName(c.in) {
			t.Errorf("IsLayerName(%q) = true", c.in)
		}
	}
}

func TestSortLayers(t *testing.T) {
	var ls []Layer
	for _, s := range []string{"Base-2-0+1", "Base-1-0+10", "Base-1-0+2", "Base-1-0+1", "Base-10-0+1"} {
		b, n, err := ParseLayer(s)
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, Layer{b, n})
	}
	SortLayers(ls)
	var got []string
	for _, l := range ls {
		got = append(got, l.String())
	}
	want := []string{"Base-1-0+1", "Base-1-0+2", "Base-1-0+10", "Base-2-0+1", "Base-10-0+1"}
	if !slices.Equal(got, want) {
		t.Errorf("SortLayers = %v, want %v", got, want)
	}
}
