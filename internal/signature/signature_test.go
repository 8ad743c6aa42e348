package signature

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
)

const digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

func newKey(t *testing.T) (*ecdsa.PrivateKey, []byte) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	return k, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// Sign makes a signature as cosign sign --key does.
func Sign(t *testing.T, k *ecdsa.PrivateKey, payload []byte) Signature {
	h := sha256.Sum256(payload)
	sig, err := ecdsa.SignASN1(rand.Reader, k, h[:])
	if err != nil {
		t.Fatal(err)
	}
	return Signature{Payload: payload, Base64: base64.StdEncoding.EncodeToString(sig)}
}

func TestVerify(t *testing.T) {
	good, goodPub := newKey(t)
	other, otherPub := newKey(t)
	pub, err := ParseKey(goodPub)
	if err != nil {
		t.Fatal(err)
	}
	keys := []Key{{Name: "release.pub", Pub: pub}}
	payload := NewPayload("registry.example/os/base", digest)
	if name, err := Verify("R", digest, keys, []Signature{Sign(t, other, payload), Sign(t, good, payload)}); err != nil || name != "release.pub" {
		t.Fatalf("good signature refused: %q %v", name, err)
	}
	refuse := func(what string, sigs []Signature, ks []Key, want string) {
		t.Helper()
		_, err := Verify("R", digest, ks, sigs)
		var e *Error
		if !errors.As(err, &e) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", what, err, want)
		}
	}
	refuse("other key", []Signature{Sign(t, other, payload)}, keys, "no trusted key made it")
	refuse("other digest", []Signature{Sign(t, good, NewPayload("r", "sha256:"+strings.Repeat("2", 64)))}, keys, "it signs sha256:2222")
	tampered := Sign(t, good, payload)
	tampered.Payload = []byte(strings.Replace(string(payload), "example", "exampla", 1))
	refuse("tampered payload", []Signature{tampered}, keys, "no trusted key made it")
	refuse("none", nil, keys, "no tag sha256-1111111111111111111111111111111111111111111111111111111111111111.sig")
	refuse("no cosign keys", []Signature{Sign(t, good, payload)}, nil, "no cosign (PEM) public key is configured")
	bad := Sign(t, good, payload)
	bad.Base64 = "!!"
	refuse("bad base64", []Signature{bad}, keys, "no trusted key made it")
	wrongType := Sign(t, good, []byte(strings.Replace(string(payload), payloadType, "atomic container signature", 1)))
	refuse("wrong type", []Signature{wrongType}, keys, `payload is of type "atomic container signature"`)

	if _, err := ParseKey(otherPub); err != nil {
		t.Error(err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	if _, err := ParseKey(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})); err == nil {
		t.Error("P-384 key accepted")
	}
}

func TestTag(t *testing.T) {
	if tag, err := Tag(digest); err != nil || tag != "sha256-"+strings.Repeat("1", 64)+".sig" {
		t.Errorf("%q %v", tag, err)
	}
	if _, err := Tag("sha512:ab"); err == nil {
		t.Error("bad digest accepted")
	}
}
