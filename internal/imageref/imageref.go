// Package imageref parses image references in the spelling of skopeo,
// podman and bootc: docker://REGISTRY/REPO[:TAG|@sha256:HEX],
// oci:DIR[:TAG], oci-archive:FILE[:TAG], and plain paths to image files
// (raw images, liveimg squashfs), which imgbase has always taken.
//
// A string is read as a transport reference when it starts with a word of
// lowercase letters, digits and dashes followed by ':' — "docker:", "oci:",
// "dir:", "https:" — and as a file path otherwise. A file whose name has
// such a prefix is spelled with a directory, "./img:1.raw", as with
// skopeo. The rule refuses "docker-archive:x" and "https://…" by name
// instead of looking for a file of that name.
package imageref

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Transport is how an image is reached.
type Transport string

const (
	File       Transport = "file"        // a path to an image file
	Docker     Transport = "docker"      // a registry (the distribution API)
	OCI        Transport = "oci"         // an OCI image layout directory
	OCIArchive Transport = "oci-archive" // a tar of an OCI image layout
)

// Ref is a parsed reference. For Docker, Name is the repository with its
// registry ("127.0.0.1:5000/os/base", "index.docker.io/library/debian"),
// and exactly one of Tag and Digest is set ("latest" when neither was
// written). For OCI and OCIArchive, Path is the directory or file and Tag
// the image's org.opencontainers.image.ref.name, empty when the layout is
// to hold a single image. For File, Path is the path as written.
type Ref struct {
	Transport Transport
	Name      string
	Path      string
	Tag       string
	Digest    string // "sha256:<64 hex>"
}

// String returns the reference in the spelling Parse reads; for Docker it
// is normalised (registry made explicit, default tag written).
func (r Ref) String() string {
	switch r.Transport {
	case Docker:
		if r.Digest != "" {
			return "docker://" + r.Name + "@" + r.Digest
		}
		return "docker://" + r.Name + ":" + r.Tag
	case OCI, OCIArchive:
		s := string(r.Transport) + ":" + r.Path
		if r.Tag != "" {
			s += ":" + r.Tag
		}
		return s
	}
	return r.Path
}

// Pinned says whether the reference names a manifest by digest, which the
// pulled image is then always checked against.
func (r Ref) Pinned() bool { return r.Digest != "" }

// Error is a refused reference; its message is one line.
type Error struct {
	Ref    string
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("cannot use image reference %q: %s", e.Ref, e.Reason)
}

const choices = "use docker://, oci:, oci-archive: or a file path"

// Parse reads s (see the package comment).
func Parse(s string) (Ref, error) {
	bad := func(format string, a ...any) (Ref, error) {
		return Ref{}, &Error{Ref: s, Reason: fmt.Sprintf(format, a...)}
	}
	if s == "" {
		return bad("it is empty; %s", choices)
	}
	if strings.ContainsAny(s, "\x00\n") {
		return bad("it contains a NUL or newline")
	}
	word, rest, ok := transportPrefix(s)
	if !ok {
		return Ref{Transport: File, Path: s}, nil
	}
	switch word {
	case "docker":
		if !strings.HasPrefix(rest, "//") {
			return bad("the docker transport is spelled docker://REGISTRY/REPO[:TAG|@sha256:…]")
		}
		return parseDocker(s, rest[2:])
	case "oci", "oci-archive":
		return parseLayout(s, Transport(word), rest)
	}
	return bad("unknown transport %q; %s", word, choices)
}

// transportPrefix splits "word:rest" when word looks like a transport name.
func transportPrefix(s string) (word, rest string, ok bool) {
	i := strings.IndexByte(s, ':')
	if i <= 0 {
		return "", "", false
	}
	for j, c := range s[:i] {
		switch {
		case c >= 'a' && c <= 'z':
		case j > 0 && (c >= '0' && c <= '9' || c == '-'):
		default:
			return "", "", false
		}
	}
	return s[:i], s[i+1:], true
}

func parseDocker(s, body string) (Ref, error) {
	if body == "" {
		return Ref{}, &Error{Ref: s, Reason: "it names no repository"}
	}
	// StrictValidation would refuse "debian" without a tag; the ecosystem
	// reads that as :latest, so only the defaults are relied on here.
	r, err := name.ParseReference(body)
	if err != nil {
		return Ref{}, &Error{Ref: s, Reason: oneLine(err.Error())}
	}
	out := Ref{Transport: Docker, Name: r.Context().Name()}
	switch v := r.(type) {
	case name.Digest:
		out.Digest = v.DigestStr()
		if !strings.HasPrefix(out.Digest, "sha256:") {
			return Ref{}, &Error{Ref: s, Reason: "only sha256 digests are supported"}
		}
	case name.Tag:
		out.Tag = v.TagStr()
	}
	return out, nil
}

func parseLayout(s string, t Transport, body string) (Ref, error) {
	// As in containers/image, the path ends at the first ':'; the tag
	// is the rest and may itself hold colons.
	p, tag, _ := strings.Cut(body, ":")
	if p == "" {
		return Ref{}, &Error{Ref: s, Reason: fmt.Sprintf("%s: needs a path (%s:PATH[:TAG])", t, t)}
	}
	if strings.Contains(body, ":") && tag == "" {
		return Ref{}, &Error{Ref: s, Reason: "the tag after ':' is empty"}
	}
	if tag != "" && !validRefName(tag) {
		return Ref{}, &Error{Ref: s, Reason: fmt.Sprintf("tag %q is not a valid image name (letters, digits and . _ - : / @ +)", tag)}
	}
	return Ref{Transport: t, Path: p, Tag: tag}, nil
}

// validRefName is the OCI image-layout grammar for ref.name values,
// loosened to the characters it lists: no spaces or control characters.
func validRefName(s string) bool {
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.ContainsRune("._-:/@+", c):
		default:
			return false
		}
	}
	return true
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
