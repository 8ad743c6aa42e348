// Package origin records where a base came from (the image reference and
// its manifest digest) in the base's own LV tags.
//
// Tags, rather than a file, because LVM metadata is what every layer sees:
// it outlives a switch of layers (a new layer does not carry the old one's
// /var), costs no mount to read (the one lvs call that builds the layout
// already returns them), is set by the same lvcreate that makes the base
// and goes away with it. A tag admits only [A-Za-z0-9_+.-/=!:#&], so the
// digest ("sha256:hex") is stored as is and the reference, which may hold
// '@' or '%', as unpadded base64url.
package origin

import (
	"encoding/base64"
	"strings"
)

const (
	digestPrefix = "imgbased:digest="
	refPrefix    = "imgbased:ref="
	// maxTag keeps tags within LVM's name length.
	maxTag = 128
)

// Origin is where a base came from.
type Origin struct {
	Ref    string `json:"ref,omitempty"`
	Digest string `json:"digest,omitempty"`
}

// Tags returns the LV tags that record s. A reference too long for a tag
// is left out: the digest alone still tells whether a tag moved.
func Tags(s Origin) []string {
	var out []string
	if s.Digest != "" && validDigest(s.Digest) {
		out = append(out, digestPrefix+s.Digest)
	}
	if s.Ref != "" {
		// A digest-pinned reference repeats the digest: keep only its "@".
		ref := s.Ref
		if s.Digest != "" && strings.HasSuffix(ref, "@"+s.Digest) {
			ref = strings.TrimSuffix(ref, s.Digest)
		}
		if t := refPrefix + base64.RawURLEncoding.EncodeToString([]byte(ref)); len(t) <= maxTag {
			out = append(out, t)
		}
	}
	return out
}

// FromTags reads what Tags recorded; ok is false when nothing was.
func FromTags(tags []string) (s Origin, ok bool) {
	for _, t := range tags {
		switch {
		case strings.HasPrefix(t, digestPrefix):
			s.Digest = strings.TrimPrefix(t, digestPrefix)
		case strings.HasPrefix(t, refPrefix):
			if b, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(t, refPrefix)); err == nil {
				s.Ref = string(b)
			}
		}
	}
	if strings.HasSuffix(s.Ref, "@") && s.Digest != "" {
		s.Ref += s.Digest
	}
	return s, s.Digest != "" || s.Ref != ""
}

// validDigest accepts "algorithm:hex" made of tag-safe characters.
func validDigest(d string) bool {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok || alg == "" || hex == "" {
		return false
	}
	for _, r := range d {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == ':' || r == '+' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}
