package keyring

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"aead.dev/minisign"
)

func pemKey(t *testing.T, curve elliptic.Curve) []byte {
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func minisignKey(t *testing.T) (minisign.PublicKey, []byte) {
	pub, _, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := pub.MarshalText()
	return pub, append(text, '\n')
}

// TestLoadBothKinds: one directory holds keys of both kinds, each read as
// its kind; files not named *.pub are not keys.
func TestLoadBothKinds(t *testing.T) {
	dir := t.TempDir()
	mpub, mtext := minisignKey(t)
	os.WriteFile(filepath.Join(dir, "files.pub"), mtext, 0o644)
	os.WriteFile(filepath.Join(dir, "registry.pub"), pemKey(t, elliptic.P256()), 0o644)
	os.WriteFile(filepath.Join(dir, "README"), []byte("not a key"), 0o644)
	r, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Minisign) != 1 || r.Minisign[0].Path != filepath.Join(dir, "files.pub") || !r.Minisign[0].Key.Equal(mpub) {
		t.Errorf("minisign keys: %+v", r.Minisign)
	}
	if len(r.Cosign) != 1 || r.Cosign[0].Name != "registry.pub" || r.Cosign[0].Pub == nil {
		t.Errorf("cosign keys: %+v", r.Cosign)
	}
	if r.Len() != 2 || r.Dir != dir {
		t.Errorf("Len %d, Dir %q", r.Len(), r.Dir)
	}
}

// TestLoadRefusesWhatIsNoKey: a *.pub that is neither kind stops the load
// (naming the file) rather than being skipped.
func TestLoadRefusesWhatIsNoKey(t *testing.T) {
	for name, data := range map[string][]byte{
		"nonsense":      []byte("nonsense"),
		"p384":          pemKey(t, elliptic.P384()),
		"pem not a key": []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "bad.pub"), data, 0o644)
			_, err := Load(dir)
			if !errors.Is(err, ErrBadKey) || !strings.Contains(err.Error(), "bad.pub") || strings.Contains(err.Error(), "\n") {
				t.Errorf("got %v, want one line naming bad.pub, ErrBadKey", err)
			}
		})
	}
}

func TestLoadMissingDir(t *testing.T) {
	r, err := Load(filepath.Join(t.TempDir(), "none"))
	if err != nil || r.Len() != 0 {
		t.Errorf("%+v %v", r, err)
	}
}
