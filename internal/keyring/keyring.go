// Package keyring reads the keys an admin trusts to sign images. They live
// in one directory (/etc/imgbased/keys), one *.pub file each, of two kinds:
// minisign public keys, for image files and their IMAGE.minisig, and PEM
// ECDSA P-256 public keys (cosign's), for images from OCI registries.
//
// One key of either kind means the admin wants signed images only: every
// image must then carry a signature by a key of the kind its format uses,
// and an image whose kind has no key configured is refused, never let
// through because the keys present are of the other kind.
package keyring

import (
	"bytes"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"aead.dev/minisign"

	"github.com/imgbase/imgbase/internal/signature"
)

// DefaultDir is where the admin puts the public keys of image signers.
const DefaultDir = "/etc/imgbased/keys"

// ErrBadKey: a *.pub file in the directory is neither kind of key.
var ErrBadKey = errors.New("public key is malformed")

// MinisignKey is a trusted minisign key and the file it came from.
type MinisignKey struct {
	Path string
	Key  minisign.PublicKey
}

// Ring is the trusted keys of one directory.
type Ring struct {
	Dir      string
	Minisign []MinisignKey
	Cosign   []signature.Key
}

// Len is the number of keys of both kinds: when it is not zero, every
// image must be signed.
func (r Ring) Len() int { return len(r.Minisign) + len(r.Cosign) }

// Load reads every *.pub in dir. A missing or empty directory gives no
// keys; a file that is neither kind of key is an error, never skipped,
// since skipping it could silently turn signature checks off.
func Load(dir string) (Ring, error) {
	r := Ring{Dir: dir}
	paths, err := filepath.Glob(filepath.Join(dir, "*.pub"))
	if err != nil {
		return r, fmt.Errorf("cannot list keys in %s: %w", dir, err)
	}
	sort.Strings(paths)
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return r, fmt.Errorf("cannot read key %s: %w", p, err)
		}
		if b, _ := pem.Decode(data); b != nil {
			pub, err := signature.ParseKey(data)
			if err != nil {
				return r, fmt.Errorf("cannot read key %s: %w: %v; replace it with cosign's PEM public key or remove it", p, ErrBadKey, err)
			}
			r.Cosign = append(r.Cosign, signature.Key{Name: filepath.Base(p), Pub: pub})
			continue
		}
		var k minisign.PublicKey
		if err := k.UnmarshalText(bytes.TrimSpace(data)); err != nil {
			return r, fmt.Errorf("cannot read key %s: %w: neither a minisign public key (%v) nor a PEM one; replace it or remove it", p, ErrBadKey, err)
		}
		r.Minisign = append(r.Minisign, MinisignKey{Path: p, Key: k})
	}
	return r, nil
}
