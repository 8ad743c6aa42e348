package verify

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"aead.dev/minisign"
)

type fixture struct {
	dir, image, keys string
	content          []byte
	priv             minisign.PrivateKey
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{dir: dir, image: filepath.Join(dir, "v2.img"), keys: filepath.Join(dir, "keys")}
	f.content = bytes.Repeat([]byte("image data "), 300000) // > 1 buffer
	if err := os.WriteFile(f.image, f.content, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(f.keys, 0o755)
	return f
}

// addKey makes a key pair, installs the public half as name and returns
// the private half.
func (f *fixture) addKey(t *testing.T, name string) minisign.PrivateKey {
	t.Helper()
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := pub.MarshalText()
	if err := os.WriteFile(filepath.Join(f.keys, name), append(text, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	return priv
}

// sign writes <image>.minisig the way `minisign -S` does (prehashed).
func (f *fixture) sign(t *testing.T, priv minisign.PrivateKey, content []byte) {
	t.Helper()
	r := minisign.NewReader(bytes.NewReader(content))
	if _, err := r.Read(make([]byte, len(content)+1)); err != nil {
		t.Fatal(err)
	}
	sig := r.SignWithComments(priv, "file:v2.img", "signature from test key")
	if err := os.WriteFile(f.image+".minisig", sig, 0o644); err != nil {
		t.Fatal(err)
	}
}

func digest(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func (f *fixture) check(opts Options) (Result, error) {
	opts.KeysDir = f.keys
	return Check(context.Background(), f.image, opts)
}

func TestNothingConfigured(t *testing.T) {
	f := newFixture(t)
	res, err := f.check(Options{})
	if err != nil || res.Verified() {
		t.Fatalf("got %+v, %v", res, err)
	}
}

func TestGivenDigest(t *testing.T) {
	f := newFixture(t)
	var last int64
	res, err := f.check(Options{SHA256: strings.ToUpper(digest(f.content)), Progress: func(d int64) { last = d }})
	if err != nil || res.SHA256 != digest(f.content) || res.ChecksumFrom != "given" {
		t.Fatalf("got %+v, %v", res, err)
	}
	if last != int64(len(f.content)) {
		t.Errorf("progress ended at %d of %d", last, len(f.content))
	}
	_, err = f.check(Options{SHA256: digest([]byte("other"))})
	if !errors.Is(err, ErrChecksumMismatch) || !strings.Contains(err.Error(), "download the image again") {
		t.Fatalf("got %v, want ErrChecksumMismatch", err)
	}
	// Insecure does not excuse a damaged file.
	if _, err = f.check(Options{SHA256: digest([]byte("other")), Insecure: true}); !errors.Is(err, ErrChecksumMismatch) {
		t.Fatalf("insecure: got %v, want ErrChecksumMismatch", err)
	}
	if _, err = f.check(Options{SHA256: "abc"}); !errors.Is(err, ErrBadChecksum) {
		t.Fatalf("got %v, want ErrBadChecksum", err)
	}
}

func TestSumFile(t *testing.T) {
	f := newFixture(t)
	good := digest(f.content)
	bad := digest([]byte("x"))
	for _, c := range []struct {
		name, text string
		want       error
	}{
		{"sha256sum", good + "  v2.img\n", nil},
		{"binary mark", good + " *v2.img\n", nil},
		{"renamed single entry", good + "  Base-2-0.img\n", nil},
		{"several, ours second", bad + "  v1.img\n" + good + "  images/v2.img\n", nil},
		{"bsd tag", "SHA256 (v2.img) = " + good + "\n", nil},
		{"comment and blank lines", "# made by build\n\n" + good + "  v2.img\n", nil},
		{"wrong digest", bad + "  v2.img\n", ErrChecksumMismatch},
		{"several, none ours", bad + "  v1.img\n" + good + "  v3.img\n", ErrBadChecksum},
		{"garbage", "hello world\n", ErrBadChecksum},
	} {
		os.WriteFile(f.image+".sha256", []byte(c.text), 0o644)
		res, err := f.check(Options{})
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
			continue
		}
		if c.want == nil && (res.SHA256 != good || res.ChecksumFrom != f.image+".sha256") {
			t.Errorf("%s: got %+v", c.name, res)
		}
	}
}

func TestSignature(t *testing.T) {
	f := newFixture(t)
	f.addKey(t, "other.pub")
	priv := f.addKey(t, "vendor.pub")

	// Keys configured, no signature: refused unless insecure.
	if _, err := f.check(Options{}); !errors.Is(err, ErrUnsigned) || !strings.Contains(err.Error(), "--insecure") {
		t.Fatalf("unsigned: got %v", err)
	}
	if res, err := f.check(Options{Insecure: true}); err != nil || res.SignedBy != "" {
		t.Fatalf("unsigned, insecure: got %+v, %v", res, err)
	}

	f.sign(t, priv, f.content)
	res, err := f.check(Options{})
	if err != nil || res.SignedBy != filepath.Join(f.keys, "vendor.pub") || res.TrustedComment != "file:v2.img" || res.Keys != 2 {
		t.Fatalf("signed: got %+v, %v", res, err)
	}
	// Signature and digest in the same pass.
	if res, err := f.check(Options{SHA256: digest(f.content)}); err != nil || res.SignedBy == "" || res.SHA256 == "" {
		t.Fatalf("signed with digest: got %+v, %v", res, err)
	}

	// The image changed after signing.
	f.sign(t, priv, append([]byte("X"), f.content[1:]...))
	if _, err := f.check(Options{}); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("altered image: got %v, want ErrBadSignature", err)
	}
	// The signature file is damaged.
	os.WriteFile(f.image+".minisig", []byte("untrusted comment: x\nnot base64\n"), 0o644)
	if _, err := f.check(Options{}); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("damaged signature: got %v, want ErrBadSignature", err)
	}
	// Signed by a key the admin did not install.
	_, stranger, _ := minisign.GenerateKey(rand.Reader)
	f.sign(t, stranger, f.content)
	if _, err := f.check(Options{}); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("unknown key: got %v, want ErrUnknownKey", err)
	}
	// A legacy (not prehashed) signature is refused, not read into memory.
	os.WriteFile(f.image+".minisig", minisign.Sign(priv, f.content), 0o644)
	if _, err := f.check(Options{}); !errors.Is(err, ErrBadSignature) || !strings.Contains(err.Error(), "legacy") {
		t.Fatalf("legacy signature: got %v", err)
	}
	// An explicit signature path.
	f.sign(t, priv, f.content)
	os.Rename(f.image+".minisig", filepath.Join(f.dir, "elsewhere.sig"))
	if _, err := f.check(Options{Signature: filepath.Join(f.dir, "elsewhere.sig")}); err != nil {
		t.Fatalf("explicit signature path: %v", err)
	}
}

func TestBadKeyFile(t *testing.T) {
	f := newFixture(t)
	os.WriteFile(filepath.Join(f.keys, "broken.pub"), []byte("nonsense"), 0o644)
	if _, err := f.check(Options{}); !errors.Is(err, ErrBadKey) {
		t.Fatalf("got %v, want ErrBadKey", err)
	}
	// Files not named *.pub are not keys.
	os.Remove(filepath.Join(f.keys, "broken.pub"))
	os.WriteFile(filepath.Join(f.keys, "README"), []byte("nonsense"), 0o644)
	if _, err := f.check(Options{}); err != nil {
		t.Fatal(err)
	}
}

func TestMissingKeysDir(t *testing.T) {
	f := newFixture(t)
	res, err := Check(context.Background(), f.image, Options{KeysDir: filepath.Join(f.dir, "none")})
	if err != nil || res.Keys != 0 {
		t.Fatalf("got %+v, %v", res, err)
	}
}

func TestCancelled(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Check(ctx, f.image, Options{KeysDir: f.keys, SHA256: digest(f.content)}); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

// TestMinisignTool checks that signatures made by the minisign program
// itself, as a vendor would make them, are accepted and enforced.
func TestMinisignTool(t *testing.T) {
	if _, err := exec.LookPath("minisign"); err != nil {
		t.Skip("minisign is not installed (apt-get install minisign)")
	}
	f := newFixture(t)
	sec := filepath.Join(f.dir, "vendor.key")
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("minisign", args...).CombinedOutput(); err != nil {
			t.Fatalf("minisign %v: %v\n%s", args, err, out)
		}
	}
	run("-G", "-W", "-p", filepath.Join(f.keys, "vendor.pub"), "-s", sec)
	run("-S", "-s", sec, "-m", f.image, "-t", "Base-2-0")
	res, err := f.check(Options{})
	if err != nil || res.TrustedComment != "Base-2-0" {
		t.Fatalf("got %+v, %v", res, err)
	}
	os.WriteFile(f.image, append(f.content, 0), 0o644)
	if _, err := f.check(Options{}); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("altered image: got %v, want ErrBadSignature", err)
	}
}

// FuzzParseSumFile: a .sha256 file of any content yields a valid digest
// or ErrBadChecksum, never a panic.
func FuzzParseSumFile(f *testing.F) {
	f.Add([]byte(strings.Repeat("a", 64)+"  v2.img\n"), "v2.img")
	f.Add([]byte("SHA256 (x) = "+strings.Repeat("0", 64)), "x")
	f.Fuzz(func(t *testing.T, text []byte, name string) {
		d, err := parseSumFile(text, name)
		if err == nil && !isDigest(d) {
			t.Fatalf("accepted %q", d)
		}
		if err != nil && !errors.Is(err, ErrBadChecksum) {
			t.Fatalf("unexpected error %v", err)
		}
	})
}

// TestReadError: a read failure mid-way is reported with both digests
// running, and nothing is left waiting.
func TestReadError(t *testing.T) {
	f := newFixture(t)
	priv := f.addKey(t, "vendor.pub")
	f.sign(t, priv, f.content)
	dir := filepath.Join(f.dir, "adir")
	os.Mkdir(dir, 0o755)
	os.Rename(f.image+".minisig", dir+".minisig")
	_, err := Check(context.Background(), dir, Options{KeysDir: f.keys, SHA256: digest(f.content)})
	if err == nil || errors.Is(err, ErrChecksumMismatch) || errors.Is(err, ErrBadSignature) {
		t.Fatalf("reading a directory: got %v", err)
	}
}

// TestCosignKeyBeside: a cosign (PEM) key for OCI images shares the
// directory. It is no minisign key, yet it means signed images only: an
// unsigned file is refused; a file signed by the minisign key beside it
// goes in.
func TestCosignKeyBeside(t *testing.T) {
	f := newFixture(t)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	os.WriteFile(filepath.Join(f.keys, "registry.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	if _, err := f.check(Options{}); !errors.Is(err, ErrUnsigned) {
		t.Fatalf("unsigned image with a cosign key configured: got %v, want ErrUnsigned", err)
	}
	priv := f.addKey(t, "files.pub")
	f.sign(t, priv, f.content)
	res, err := f.check(Options{})
	if err != nil || res.SignedBy != filepath.Join(f.keys, "files.pub") || res.Keys != 2 {
		t.Fatalf("signed image: %+v, %v", res, err)
	}
}
