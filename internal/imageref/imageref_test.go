package imageref

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	const d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, c := range []struct {
		in   string
		want Ref
		str  string
	}{
		{"docker://127.0.0.1:5000/os/base:2.0", Ref{Transport: Docker, Name: "127.0.0.1:5000/os/base", Tag: "2.0"}, ""},
		{"docker://127.0.0.1:5000/os/base", Ref{Transport: Docker, Name: "127.0.0.1:5000/os/base", Tag: "latest"}, "docker://127.0.0.1:5000/os/base:latest"},
		{"docker://quay.io/x/y@" + d, Ref{Transport: Docker, Name: "quay.io/x/y", Digest: d}, ""},
		{"docker://debian", Ref{Transport: Docker, Name: "index.docker.io/library/debian", Tag: "latest"}, "docker://index.docker.io/library/debian:latest"},
		{"oci:/srv/layout", Ref{Transport: OCI, Path: "/srv/layout"}, ""},
		{"oci:/srv/layout:2.0", Ref{Transport: OCI, Path: "/srv/layout", Tag: "2.0"}, ""},
		{"oci:rel/dir:a:b", Ref{Transport: OCI, Path: "rel/dir", Tag: "a:b"}, ""},
		{"oci-archive:/tmp/img.tar:v2", Ref{Transport: OCIArchive, Path: "/tmp/img.tar", Tag: "v2"}, ""},
		{"/var/tmp/base.raw", Ref{Transport: File, Path: "/var/tmp/base.raw"}, ""},
		{"base.squashfs.img", Ref{Transport: File, Path: "base.squashfs.img"}, ""},
		{"./img:1.raw", Ref{Transport: File, Path: "./img:1.raw"}, ""},
		{"Img:1.raw", Ref{Transport: File, Path: "Img:1.raw"}, ""},
	} {
		got, err := Parse(c.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("Parse(%q) = %+v, want %+v", c.in, got, c.want)
		}
		str := c.str
		if str == "" {
			str = c.in
		}
		if got.String() != str {
			t.Errorf("Parse(%q).String() = %q, want %q", c.in, got.String(), str)
		}
		if got.Pinned() != (c.want.Digest != "") {
			t.Errorf("Parse(%q).Pinned() = %v", c.in, got.Pinned())
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", `cannot use image reference "": it is empty; use docker://, oci:, oci-archive: or a file path`},
		{"docker-archive:/x.tar", `cannot use image reference "docker-archive:/x.tar": unknown transport "docker-archive"; use docker://, oci:, oci-archive: or a file path`},
		{"https://example.com/x.raw", `unknown transport "https"`},
		{"containers-storage:fedora", `unknown transport "containers-storage"`},
		{"docker:debian", "the docker transport is spelled docker://"},
		{"docker://", "it names no repository"},
		{"docker://Bad/UPPER", `cannot use image reference "docker://Bad/UPPER": `},
		{"docker://x/y@sha256:abc", `cannot use image reference "docker://x/y@sha256:abc": `},
		{"oci:", "oci: needs a path"},
		{"oci::tag", "oci: needs a path"},
		{"oci-archive:/x.tar:", "the tag after ':' is empty"},
		{"oci:/d:bad tag", `tag "bad tag" is not a valid image name`},
		{"a\nb", "NUL or newline"},
	} {
		_, err := Parse(c.in)
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("Parse(%q) = %v, want *Error", c.in, err)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q) = %q, want it to contain %q", c.in, err, c.want)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("Parse(%q) error spans lines: %q", c.in, err)
		}
	}
}

// FuzzParse: Parse never panics, errors are one line, and an accepted
// reference's String parses back to the same Ref.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"docker://a.b:5000/c/d:e", "docker://x@sha256:" + strings.Repeat("a", 64),
		"oci:/d:t", "oci-archive:f", "/p", "dir:x", "docker:x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error for %q: %q", s, err)
			}
			return
		}
		again, err := Parse(r.String())
		if err != nil {
			t.Fatalf("Parse(%q) = %+v, whose String %q is refused: %v", s, r, r.String(), err)
		}
		if again != r {
			t.Fatalf("round trip of %q: %+v then %+v", s, r, again)
		}
	})
}
