package nvr

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

const (
	// MaxLVNameLen is the longest LV name lvm2 accepts: its NAME_LEN is
	// 128 bytes including the terminating NUL (lib/misc/lvm-string.c,
	// _validate_name), so 127 characters.
	MaxLVNameLen = 127

	// MaxLayer is the highest layer number a base name is guaranteed
	// room for. Four digits is far more layers than a host keeps (oVirt
	// Node rarely goes past +3) and costs a base name only five characters.
	MaxLayer = 9999

	// MaxBaseNameLen is the longest base name that still leaves room for
	// every layer name "<base>+<n>" up to MaxLayer within MaxLVNameLen.
	MaxBaseNameLen = MaxLVNameLen - len("+9999")

	// dmNameLen is device-mapper's DM_NAME_LEN, including the NUL.
	dmNameLen = 128
)

// reservedPrefixes and reservedSubstrings are the names lvm2 keeps for
// its own volumes (apply_lvname_restrictions). The substring list is the
// union over lvm2 2.02 and 2.03 (cache volumes, integrity, VDO and
// writecache added some), so a name valid here is valid for every lvm2 a
// host may run.
var (
	reservedPrefixes   = []string{"pvmove", "snapshot"}
	reservedSubstrings = []string{
		"_cdata", "_cmeta", "_corig", "_cpool", "_cvol",
		"_imeta", "_iorig", "_mimage", "_mlog", "_pmspare",
		"_rimage", "_rmeta", "_tdata", "_tmeta",
		"_vdata", "_vorigin", "_wcorig",
	}
)

// NameError says why a string cannot be used as a name. Kind is what the
// string was meant to be ("NVR", "layer name", "LV name", "base name").
type NameError struct {
	Name   string
	Kind   string
	Reason string
}

func (e *NameError) Error() string {
	return fmt.Sprintf("cannot use %q as %s: %s", e.Name, e.Kind, e.Reason)
}

// ValidLVName reports whether lvm2 accepts s as the name of a new
// logical volume: characters a-z A-Z 0-9 + _ . -, not starting with '-',
// not "." or "..", no reserved prefix or substring, at most MaxLVNameLen
// characters.
func ValidLVName(s string) error {
	if r := lvNameProblem(s); r != "" {
		return &NameError{Name: s, Kind: "LV name", Reason: r}
	}
	return nil
}

// ValidBaseName is ValidLVName plus room for the layer suffix: every
// layer "<s>+<n>" with n <= MaxLayer is then a valid LV name too. Check a
// new base with it before creating anything.
func ValidBaseName(s string) error {
	if r := lvNameProblem(s); r != "" {
		return &NameError{Name: s, Kind: "base name", Reason: r}
	}
	if len(s) > MaxBaseNameLen {
		return &NameError{Name: s, Kind: "base name", Reason: fmt.Sprintf(
			"%d characters is too long; a base name may have at most %d so that its layer names (+1 … +%d) fit lvm2's limit of %d",
			len(s), MaxBaseNameLen, MaxLayer, MaxLVNameLen)}
	}
	return nil
}

// DMName returns the device-mapper name of vg/lv ("/dev/mapper/<name>"):
// both joined by '-', each '-' inside them doubled.
func DMName(vg, lv string) string {
	return strings.ReplaceAll(vg, "-", "--") + "-" + strings.ReplaceAll(lv, "-", "--")
}

// ValidDMName reports whether vg/lv can be activated: its device-mapper
// name must fit DM_NAME_LEN. lvm2 does not check this when it creates the
// LV, only activation fails, and NVRs are dash-heavy, so a name within
// MaxLVNameLen can still be too long here.
func ValidDMName(vg, lv string) error {
	if n := len(DMName(vg, lv)); n >= dmNameLen {
		return &NameError{Name: vg + "/" + lv, Kind: "LV name", Reason: fmt.Sprintf(
			"its device-mapper name %q is %d characters, the kernel allows %d (each '-' counts twice)",
			DMName(vg, lv), n, dmNameLen-1)}
	}
	return nil
}

// lvNameProblem returns why s is not a valid LV name, or "".
func lvNameProblem(s string) string {
	if s == "" {
		return "it is empty"
	}
	if s[0] == '-' {
		return "it starts with '-'"
	}
	if s == "." || s == ".." {
		return "it is " + s
	}
	for _, c := range s {
		if c >= utf8.RuneSelf || !isAlnum(byte(c)) && c != '+' && c != '_' && c != '.' && c != '-' {
			return fmt.Sprintf("character %q is not allowed (lvm2 allows a-z A-Z 0-9 + _ . -)", c)
		}
	}
	if len(s) > MaxLVNameLen {
		return fmt.Sprintf("%d characters is too long (lvm2 allows %d)", len(s), MaxLVNameLen)
	}
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(s, p) {
			return fmt.Sprintf("lvm2 reserves names starting with %q", p)
		}
	}
	for _, r := range reservedSubstrings {
		if strings.Contains(s, r) {
			return fmt.Sprintf("lvm2 reserves names containing %q", r)
		}
	}
	return ""
}
