package nvr

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func mustParse(t testing.TB, s string) NVR {
	t.Helper()
	n, err := Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want NVR
	}{
		{"Base-1-0", NVR{"Base", "1", "0"}},
		{"ovirt-node-ng-4.4.10-0.20220303.0", NVR{"ovirt-node-ng", "4.4.10", "0.20220303.0"}},
		{"a-b-c-d-e", NVR{"a-b-c", "d", "e"}},
		{"0-1-2", NVR{"0", "1", "2"}},
		{"my_image-2.0_beta-1.el9", NVR{"my_image", "2.0_beta", "1.el9"}},
	} {
		got, err := Parse(c.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("Parse(%q) = %#v, want %#v", c.in, got, c.want)
		}
		if got.String() != c.in {
			t.Errorf("Parse(%q).String() = %q", c.in, got.String())
		}
	}
}

func TestParseRejects(t *testing.T) {
	for _, c := range []struct{ in, reason string }{
		{"", "empty"},
		{"Base", "no dashes"},
		{"Base-1", "only one dash"},
		{"Base-1-", "release is empty"},
		{"Base--0", "version is empty"},
		{"-1-0", "starts with '-'"},
		{"--1-0", "starts with '-'"},
		{".x-1-0", "must start with a letter or digit"},
		{"_x-1-0", "must start with a letter or digit"},
		{"Base-1-0+1", "reserved for layer names"},
		{"Base-1+git-0", "reserved for layer names"},
		{"Base-1.0~rc1-0", `character '~' is not allowed`},
		{"Base-1.0^git1-0", `character '^' is not allowed`},
		{"Base-1 0-0", `character ' ' is not allowed`},
		{"Bäse-1-0", `character 'ä' is not allowed`},
		{"Base-1/2-0", `character '/' is not allowed`},
		{"snapshot-1-0", `starting with "snapshot"`},
		{"pvmove0-1-0", `starting with "pvmove"`},
		{"x_tdata-1-0", `containing "_tdata"`},
		{"x-1-0_wcorig", `containing "_wcorig"`},
		{strings.Repeat("n", 124) + "-1-0", "128 characters is too long"},
	} {
		_, err := Parse(c.in)
		if err == nil {
			t.Errorf("Parse(%q) succeeded, want error containing %q", c.in, c.reason)
			continue
		}
		var ne *NameError
		if !errors.As(err, &ne) || ne.Kind != "NVR" || ne.Name != c.in {
			t.Errorf("Parse(%q) error %#v is not a *NameError for this NVR", c.in, err)
		}
		if !strings.Contains(err.Error(), c.reason) || !strings.HasPrefix(err.Error(), "cannot use ") {
			t.Errorf("Parse(%q) error %q, want it to contain %q", c.in, err, c.reason)
		}
	}
}

func TestParseAcceptsLongestLVName(t *testing.T) {
	s := strings.Repeat("n", 123) + "-1-0" // 127 characters
	if _, err := Parse(s); err != nil {
		t.Fatal(err)
	}
	if err := ValidBaseName(s); err == nil {
		t.Fatal("ValidBaseName accepted a base with no room for layer suffixes")
	}
}

func TestCompare(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"Base-1-0", "Base-1-0", 0},
		{"Base-1-0", "Base-2-0", -1},
		{"Base-2-0", "Base-10-0", -1},
		{"Base-1-1", "Base-1-0", 1},
		{"Base-1.0-1", "Base-1_0-1", 0}, // rpm: separators do not count
		{"Base-1-0", "Cbase-0-0", -1},   // name first
		{"a-b-1-0", "a-1-0", 1},         // name "a-b" > "a"
		{"ovirt-node-ng-4.4.10-0.20220303.0", "ovirt-node-ng-4.4.9-1", 1},
		{"x-1.0-0.rc1", "x-1.0-0.1", -1}, // alpha run loses to numeric
		{"x-2-1.el9", "x-2-1.el9_1", -1},
	} {
		a, b := mustParse(t, c.a), mustParse(t, c.b)
		if got := Compare(a, b); got != c.want {
			t.Errorf("Compare(%s, %s) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := Compare(b, a); got != -c.want {
			t.Errorf("Compare(%s, %s) = %d, want %d", c.b, c.a, got, -c.want)
		}
	}
}

func names(ns []NVR) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.String()
	}
	return out
}

func TestSort(t *testing.T) {
	want := []string{"Base-1-0", "Base-1_0-1", "Base-1.0-1", "Base-1.0-2", "Base-2-0", "Base-10-0", "Other-0-0"}
	// Every rotation of the input must give the same order, including
	// the tie between 1_0 and 1.0.
	for r := range want {
		in := make([]NVR, 0, len(want))
		for _, s := range slices.Concat(want[r:], want[:r]) {
			in = append(in, mustParse(t, s))
		}
		slices.Reverse(in)
		Sort(in)
		if got := names(in); !slices.Equal(got, []string{"Base-1-0", "Base-1.0-1", "Base-1_0-1", "Base-1.0-2", "Base-2-0", "Base-10-0", "Other-0-0"}) {
			t.Errorf("rotation %d: Sort gave %v", r, got)
		}
	}
}

func TestLatest(t *testing.T) {
	var ns []NVR
	for _, s := range []string{"Base-2-0", "Base-10-0", "Base-9-9", "Other-0-0", "Base-10-0.rc1"} {
		ns = append(ns, mustParse(t, s))
	}
	if got, ok := Latest(ns, "Base"); !ok || got.String() != "Base-10-0.rc1" {
		t.Errorf("Latest(Base) = %v, %v", got, ok)
	}
	if got, ok := Latest(ns, ""); !ok || got.String() != "Other-0-0" {
		t.Errorf("Latest(\"\") = %v, %v", got, ok)
	}
	if got, ok := Latest(ns, "Nope"); ok {
		t.Errorf("Latest(Nope) = %v, true", got)
	}
	if _, ok := Latest(nil, ""); ok {
		t.Error("Latest(nil) found something")
	}
}
