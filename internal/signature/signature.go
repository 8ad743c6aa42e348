// Package signature checks image signatures in cosign's key-based format,
// so that images signed with `cosign sign --key` (or skopeo's
// --sign-by-sigstore-private-key) are accepted by imgbase with the
// matching public key and nothing else.
//
// The format: the signatures of the manifest with digest sha256:HEX are
// the layers of the image tagged sha256-HEX.sig in the same repository.
// Each layer is a "simple signing" JSON payload naming that digest, and
// its annotation dev.cosignproject.cosign/signature holds the base64 of
// an ASN.1 ECDSA signature of the payload's SHA-256. Keys are PEM
// "PUBLIC KEY" files (PKIX), ECDSA P-256.
//
// The payload's docker-reference is not compared with the reference
// pulled: an image copied to a mirror keeps its signatures, as with
// cosign verify. The digest is what binds a signature to an image.
package signature

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// Annotation carries a layer's signature.
const Annotation = "dev.cosignproject.cosign/signature"

// PayloadMediaType is a signature layer's media type.
const PayloadMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"

// payloadType is the simple-signing payload's type for cosign.
const payloadType = "cosign container image signature"

// Tag is the tag holding the signatures of the manifest with digest.
func Tag(digest string) (string, error) {
	h, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(h) != 64 {
		return "", fmt.Errorf("cannot name the signatures of %q: not a sha256 digest", digest)
	}
	return "sha256-" + h + ".sig", nil
}

// Key is a trusted public key.
type Key struct {
	Name string // its file name
	Pub  *ecdsa.PublicKey
}

// ParseKey reads a PEM public key, which must be ECDSA P-256.
func ParseKey(data []byte) (*ecdsa.PublicKey, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "PUBLIC KEY" {
		return nil, errors.New("not a PEM \"PUBLIC KEY\"")
	}
	k, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	ec, ok := k.(*ecdsa.PublicKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("not an ECDSA P-256 key (cosign's)")
	}
	return ec, nil
}

// Signature is one layer of a .sig image.
type Signature struct {
	Payload []byte
	Base64  string // the layer's Annotation
}

// Payload is cosign's simple-signing payload.
type Payload struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
	Optional map[string]any `json:"optional"`
}

// NewPayload is the payload signing digest for reference ref.
func NewPayload(ref, digest string) []byte {
	var p Payload
	p.Critical.Identity.DockerReference = ref
	p.Critical.Image.DockerManifestDigest = digest
	p.Critical.Type = payloadType
	b, _ := json.Marshal(p)
	return b
}

// Error is an image without a valid signature by a trusted key.
type Error struct {
	Ref    string
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("image %s is not signed by a trusted key: %s (use --insecure to install it anyway)", e.Ref, e.Reason)
}

// Verify returns the name of a key that signed digest in one of sigs.
// ref names the image in the refusal.
func Verify(ref, digest string, keys []Key, sigs []Signature) (string, error) {
	if len(keys) == 0 {
		return "", &Error{Ref: ref, Reason: "no cosign (PEM) public key is configured, only keys of another kind; install the signer's cosign public key"}
	}
	if len(sigs) == 0 {
		t, _ := Tag(digest)
		return "", &Error{Ref: ref, Reason: "it has no signatures (no tag " + t + ")"}
	}
	var reasons []string
	for i, s := range sigs {
		r := check(digest, keys, s)
		if r == "" {
			return keyOf(digest, keys, s), nil
		}
		reasons = append(reasons, fmt.Sprintf("signature %d: %s", i+1, r))
	}
	return "", &Error{Ref: ref, Reason: strings.Join(reasons, "; ")}
}

// check returns why s does not sign digest with one of keys, "" if it does.
func check(digest string, keys []Key, s Signature) string {
	if keyOf(digest, keys, s) == "" {
		var p Payload
		if err := json.Unmarshal(s.Payload, &p); err != nil {
			return "its payload is not JSON"
		}
		if p.Critical.Type != payloadType {
			return fmt.Sprintf("its payload is of type %q", p.Critical.Type)
		}
		if p.Critical.Image.DockerManifestDigest != digest {
			return "it signs " + p.Critical.Image.DockerManifestDigest
		}
		return "no trusted key made it"
	}
	return ""
}

// keyOf is the key whose signature s is over a payload naming digest.
func keyOf(digest string, keys []Key, s Signature) string {
	sig, err := base64.StdEncoding.DecodeString(s.Base64)
	if err != nil {
		return ""
	}
	h := sha256.Sum256(s.Payload)
	for _, k := range keys {
		if !ecdsa.VerifyASN1(k.Pub, h[:], sig) {
			continue
		}
		// Only a signed payload is read: its claims are the signer's.
		var p Payload
		if json.Unmarshal(s.Payload, &p) == nil && p.Critical.Type == payloadType &&
			p.Critical.Image.DockerManifestDigest == digest {
			return k.Name
		}
	}
	return ""
}
