package origin

import (
	"regexp"
	"strings"
	"testing"
)

// lvmTag is what lvm2's validate_tag accepts.
var lvmTag = regexp.MustCompile(`^[A-Za-z0-9_+.\-/=!:#&]+$`)

func TestRoundTrip(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	for _, ref := range []string{
		"docker://quay.io/org/node:4.5",
		"docker://127.0.0.1:5000/node@" + d,
		"oci:/var/tmp/my layout:2.0",
		"oci-archive:/tmp/v2.tar",
	} {
		tags := Tags(Origin{Ref: ref, Digest: d})
		if len(tags) != 2 {
			t.Fatalf("%s: tags %q", ref, tags)
		}
		for _, tag := range tags {
			if !lvmTag.MatchString(tag) || len(tag) > maxTag {
				t.Errorf("%s: tag %q is not a valid LVM tag", ref, tag)
			}
		}
		got, ok := FromTags(append([]string{"imgbased:base"}, tags...))
		if !ok || got.Ref != ref || got.Digest != d {
			t.Errorf("round trip of %s: %+v", ref, got)
		}
	}
}

func TestLongRefKeepsDigest(t *testing.T) {
	d := "sha256:" + strings.Repeat("0f", 32)
	tags := Tags(Origin{Ref: "oci-archive:/" + strings.Repeat("x", 200), Digest: d})
	if len(tags) != 1 {
		t.Fatalf("tags %q", tags)
	}
	got, ok := FromTags(tags)
	if !ok || got.Digest != d || got.Ref != "" {
		t.Errorf("got %+v", got)
	}
}

func TestNone(t *testing.T) {
	if _, ok := FromTags([]string{"imgbased:base", "imgbased:pinned"}); ok {
		t.Error("a base without source tags has a source")
	}
	if tags := Tags(Origin{Digest: "sha256:a@b"}); len(tags) != 0 {
		t.Errorf("a digest with '@' made tags %q", tags)
	}
}
