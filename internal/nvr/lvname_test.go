package nvr

import (
	"errors"
	"strings"
	"testing"
)

func TestValidLVName(t *testing.T) {
	for _, ok := range []string{
		"a", "root", "Base-1-0", "Base-1-0+1", "a.b_c+d-e", "..a", ".a", "a-",
		strings.Repeat("x", 127), "snapshoT", "my_tdat", "x_mlo",
	} {
		if err := ValidLVName(ok); err != nil {
			t.Errorf("ValidLVName(%q): %v", ok, err)
		}
	}
	for _, c := range []struct{ in, reason string }{
		{"", "empty"},
		{"-a", "starts with '-'"},
		{".", "it is ."},
		{"..", "it is .."},
		{"a/b", "'/'"},
		{"a b", "' '"},
		{"a~b", "'~'"},
		{"a\x00b", `'\x00'`},
		{"a\xffb", `'�'`},
		{strings.Repeat("x", 128), "128 characters is too long"},
		{"snapshot", `starting with "snapshot"`},
		{"pvmove", `starting with "pvmove"`},
	} {
		err := ValidLVName(c.in)
		var ne *NameError
		if !errors.As(err, &ne) || ne.Kind != "LV name" {
			t.Errorf("ValidLVName(%q) = %v, want an LV *NameError", c.in, err)
			continue
		}
		if !strings.Contains(err.Error(), c.reason) {
			t.Errorf("ValidLVName(%q) = %q, want it to contain %q", c.in, err, c.reason)
		}
	}
	for _, r := range []string{"_cdata", "_cmeta", "_corig", "_mlog", "_mimage", "_pmspare", "_rimage",
		"_rmeta", "_tdata", "_tmeta", "_vorigin", "_vdata", "_wcorig"} {
		for _, s := range []string{"x" + r, "x" + r + "_0", r + "x"} {
			if err := ValidLVName(s); err == nil || !strings.Contains(err.Error(), r) {
				t.Errorf("ValidLVName(%q) = %v, want it reserved for %q", s, err, r)
			}
		}
	}
}

func TestValidBaseName(t *testing.T) {
	longest := strings.Repeat("n", MaxBaseNameLen-4) + "-1-0"
	if err := ValidBaseName(longest); err != nil {
		t.Fatal(err)
	}
	if err := ValidLVName(LayerName(mustParse(t, longest), MaxLayer)); err != nil {
		t.Errorf("the longest base leaves no room for layer %d: %v", MaxLayer, err)
	}
	err := ValidBaseName("n" + longest)
	if err == nil || !strings.Contains(err.Error(), "at most 122") {
		t.Errorf("ValidBaseName(one too long) = %v", err)
	}
	if err := ValidBaseName("snapshot-1-0"); err == nil || !strings.Contains(err.Error(), "base name") {
		t.Errorf("ValidBaseName(snapshot-1-0) = %v", err)
	}
}

func TestDMName(t *testing.T) {
	if got := DMName("onn", "ovirt-node-ng-4.4-1+1"); got != "onn-ovirt--node--ng--4.4--1+1" {
		t.Errorf("DMName = %q", got)
	}
	if got := DMName("my-vg", "lv"); got != "my--vg-lv" {
		t.Errorf("DMName = %q", got)
	}
	// 127 bytes fit DM_NAME_LEN (128 with the NUL), 128 do not.
	if err := ValidDMName("vg", strings.Repeat("x", 124)); err != nil {
		t.Errorf("127-byte dm name rejected: %v", err)
	}
	if err := ValidDMName("vg", strings.Repeat("x", 125)); err == nil {
		t.Error("128-byte dm name accepted")
	}
	// A valid LV name can still be too long once its dashes double.
	lv := strings.Repeat("a-", 60) + "1-0"
	if ValidLVName(lv) != nil {
		t.Fatal("test name should be a valid LV name")
	}
	if err := ValidDMName("vg", lv); err == nil || !strings.Contains(err.Error(), "device-mapper name") {
		t.Errorf("ValidDMName(%q) = %v", lv, err)
	}
}
