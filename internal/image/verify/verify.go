// Package verify decides whether an image file may be trusted before it
// is installed: its sha256 digest, and a detached minisign (Ed25519)
// signature checked against the public keys the admin installed.
//
// The policy: a digest, when one is known (given, or a `<image>.sha256`
// file in sha256sum format beside the image), must match. When the keys
// directory holds any `*.pub` key (package keyring: minisign keys for
// image files beside cosign keys for OCI images), the image must carry a
// signature (`<image>.minisig`) made by one of its minisign keys; only an
// explicit Insecure skips that. Both are computed in one read of the file.
package verify

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"aead.dev/minisign"

	"github.com/imgbase/imgbase/internal/keyring"
	"github.com/imgbase/imgbase/internal/sha256x"
)

// DefaultKeysDir is where the admin puts the public keys of image signers.
const DefaultKeysDir = keyring.DefaultDir

var (
	// ErrChecksumMismatch: the file's sha256 is not the expected one.
	ErrChecksumMismatch = errors.New("image checksum does not match")
	// ErrBadChecksum: the digest given or the .sha256 file is malformed
	// or does not name the image.
	ErrBadChecksum = errors.New("checksum is malformed")
	// ErrUnsigned: keys are configured and the image has no signature.
	ErrUnsigned = errors.New("image is not signed")
	// ErrBadSignature: the signature does not verify, or is malformed.
	ErrBadSignature = errors.New("image signature is not valid")
	// ErrUnknownKey: the signature names a key that is not configured.
	ErrUnknownKey = errors.New("image is signed by an unknown key")
	// ErrBadKey: a file in the keys directory is not a public key.
	ErrBadKey = keyring.ErrBadKey
)

// Options says what to check.
type Options struct {
	// SHA256 is the expected digest in hex. Empty: read <image>.sha256
	// when it exists.
	SHA256 string
	// KeysDir holds the trusted minisign public keys (*.pub). Empty
	// means DefaultKeysDir; a missing directory means no keys.
	KeysDir string
	// Signature is the detached signature file. Empty: <image>.minisig.
	Signature string
	// Insecure skips the signature requirement. A known digest is still
	// checked: a mismatch means a damaged file, which no flag makes
	// usable.
	Insecure bool
	// Progress, when set, is told how many bytes have been read.
	Progress func(done int64)
}

// Result says what was verified.
type Result struct {
	// SHA256 is the digest that was checked, "" when none was known.
	SHA256 string
	// ChecksumFrom is "given" or the .sha256 file the digest came from.
	ChecksumFrom string
	// SignedBy is the key file that verified the signature, "" when no
	// signature was checked.
	SignedBy string
	// TrustedComment is the signature's signed comment.
	TrustedComment string
	// Keys is how many public keys are configured.
	Keys int
}

// Verified reports whether anything was checked at all.
func (r Result) Verified() bool { return r.SHA256 != "" || r.SignedBy != "" }

// Check verifies the image at path according to opts, reading it once.
func Check(ctx context.Context, path string, opts Options) (Result, error) {
	p, err := Prepare(path, opts)
	if err != nil || !p.Pending() {
		return p.Result(), err
	}
	defer p.Abort()
	f, err := os.Open(path)
	if err != nil {
		return p.Result(), fmt.Errorf("cannot verify image: %w", err)
	}
	defer f.Close()
	if err := readAll(ctx, f, p, opts.Progress); err != nil {
		return p.Result(), fmt.Errorf("cannot verify image %s: %w", path, err)
	}
	return p.Finish()
}

// Verifier is a verification waiting for the image's bytes: whoever reads
// the file anyway (to write it to a volume) writes every byte of it, in
// order, to the Verifier, then asks Finish. The file is read once.
type Verifier struct {
	path, want, from string
	res              Result
	sum              hash.Hash
	sig              *signature
	signed           *minisign.Reader
	pw               *io.PipeWriter
	signedDone       chan struct{}
	sinks            []io.Writer
	errs             []error
}

// Prepare reads what the verification of the image at path needs (the
// expected digest, the keys, the signature) and refuses at once what can
// be refused without reading the image. Pending reports whether the
// image's bytes are needed at all.
func Prepare(path string, opts Options) (*Verifier, error) {
	v := &Verifier{path: path}
	keysDir := opts.KeysDir
	if keysDir == "" {
		keysDir = DefaultKeysDir
	}
	ring, err := keyring.Load(keysDir)
	if err != nil {
		return v, err
	}
	keys := ring.Minisign
	v.res = Result{Keys: ring.Len()}
	if v.want, v.from, err = expectedDigest(path, opts.SHA256); err != nil {
		return v, err
	}
	if ring.Len() > 0 && !opts.Insecure {
		if v.sig, err = loadSignature(path, opts.Signature, keys, keysDir); err != nil {
			return v, err
		}
	}
	// The two digests are computed side by side, one per core: sha256
	// without SHA-NI runs at 150–200 MB/s and would otherwise be
	// followed by BLAKE2b for the signature.
	if v.want != "" {
		v.sum = sha256x.New()
		v.sinks = append(v.sinks, v.sum)
	}
	if v.sig != nil {
		pr, pw := io.Pipe()
		v.signed, v.pw = minisign.NewReader(pr), pw
		v.signedDone = make(chan struct{})
		go func() {
			defer close(v.signedDone)
			io.Copy(io.Discard, v.signed)
		}()
		v.sinks = append(v.sinks, pw)
	}
	v.errs = make([]error, len(v.sinks))
	return v, nil
}

// Pending reports whether anything is to be checked.
func (v *Verifier) Pending() bool { return v != nil && len(v.sinks) > 0 }

// Result is what is known before Finish: the number of keys.
func (v *Verifier) Result() Result {
	if v == nil {
		return Result{}
	}
	return v.res
}

// Write feeds the next bytes of the image to every digest at once.
func (v *Verifier) Write(b []byte) (int, error) {
	var wg sync.WaitGroup
	for i := 1; i < len(v.sinks); i++ {
		wg.Go(func() { _, v.errs[i] = v.sinks[i].Write(b) })
	}
	_, v.errs[0] = v.sinks[0].Write(b)
	wg.Wait()
	if err := errors.Join(v.errs...); err != nil {
		return 0, err
	}
	return len(b), nil
}

// Abort releases a verification that will not be finished.
func (v *Verifier) Abort() {
	if v.pw != nil {
		v.pw.Close()
		<-v.signedDone
		v.pw = nil
	}
}

// Finish checks the digests of the bytes written against the expected
// ones.
func (v *Verifier) Finish() (Result, error) {
	v.Abort() // ends the signature's stream
	res, path := v.res, v.path
	if v.want != "" {
		got := hex.EncodeToString(v.sum.Sum(nil))
		if got != v.want {
			return res, fmt.Errorf("cannot trust image %s: %w: expected %s (%s), file has %s; download the image again", path, ErrChecksumMismatch, v.want, v.from, got)
		}
		res.SHA256, res.ChecksumFrom = got, v.from
	}
	if sig := v.sig; sig != nil {
		for _, k := range sig.keys {
			if v.signed.Verify(k.Key, sig.raw) {
				res.SignedBy, res.TrustedComment = k.Path, sig.parsed.TrustedComment
				return res, nil
			}
		}
		return res, fmt.Errorf("cannot trust image %s: %w: %s does not verify with key %016X; the image or its signature was altered, or signed by another key with the same ID: download both again", path, ErrBadSignature, sig.path, sig.parsed.KeyID)
	}
	return res, nil
}

// readAll reads r to the end through a 1 MiB buffer into w.
func readAll(ctx context.Context, r io.Reader, w io.Writer, progress func(int64)) error {
	buf := make([]byte, 1<<20)
	var done int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
			done += int64(n)
			if progress != nil {
				progress(done)
			}
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

type signature struct {
	path   string
	raw    []byte
	parsed minisign.Signature
	keys   []keyring.MinisignKey // the configured keys with the signature's key ID
}

func loadSignature(image, path string, keys []keyring.MinisignKey, keysDir string) (*signature, error) {
	if path == "" {
		path = image + ".minisig"
	}
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("cannot trust image %s: %w: keys are configured in %s but there is no signature %s; sign it with `minisign -Sm %s`, or pass --insecure to install it unsigned", image, ErrUnsigned, keysDir, path, filepath.Base(image))
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read signature: %w", err)
	}
	s := &signature{path: path, raw: raw}
	if err := s.parsed.UnmarshalText(raw); err != nil {
		return nil, fmt.Errorf("cannot trust image %s: %w: %s: %v", image, ErrBadSignature, path, err)
	}
	if s.parsed.Algorithm != minisign.HashEdDSA {
		// A legacy (non-prehashed) signature needs the whole image in
		// memory to verify; images are gigabytes.
		return nil, fmt.Errorf("cannot trust image %s: %w: %s is a legacy (not prehashed) minisign signature; sign the image again with a current minisign (prehashed is its default; `minisign -S -H` on old versions)", image, ErrBadSignature, path)
	}
	for _, k := range keys {
		if k.Key.ID() == s.parsed.KeyID {
			s.keys = append(s.keys, k)
		}
	}
	if len(s.keys) == 0 {
		return nil, fmt.Errorf("cannot trust image %s: %w: %s was made with key %016X, which is not among the %d minisign keys in %s; install the signer's public key there if you trust it", image, ErrUnknownKey, path, s.parsed.KeyID, len(keys), keysDir)
	}
	return s, nil
}

// expectedDigest returns the hex digest to check and where it came from:
// the given one, or the image's .sha256 file, or none.
func expectedDigest(image, given string) (digest, from string, err error) {
	if given != "" {
		d := strings.ToLower(strings.TrimSpace(given))
		if !isDigest(d) {
			return "", "", fmt.Errorf("cannot verify image: %w: %q is not a sha256 digest (64 hex digits)", ErrBadChecksum, given)
		}
		return d, "given", nil
	}
	file := image + ".sha256"
	text, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return "", "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("cannot read checksum: %w", err)
	}
	d, err := parseSumFile(text, filepath.Base(image))
	if err != nil {
		return "", "", fmt.Errorf("cannot verify image with %s: %w; fix or remove it", file, err)
	}
	return d, file, nil
}

// parseSumFile finds name's digest in sha256sum output ("<hex>  name",
// "<hex> *name") or BSD tag format ("SHA256 (name) = <hex>"). A file with
// a single entry applies whatever name it gives, since images are often
// renamed after download.
func parseSumFile(text []byte, name string) (string, error) {
	type entry struct{ digest, name string }
	var entries []entry
	sc := bufio.NewScanner(bytes.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var e entry
		if rest, ok := strings.CutPrefix(line, "SHA256 ("); ok {
			n, d, ok := strings.Cut(rest, ") = ")
			if !ok {
				return "", fmt.Errorf("%w: line %q", ErrBadChecksum, line)
			}
			e = entry{strings.ToLower(d), n}
		} else {
			d, n, _ := strings.Cut(line, " ")
			e = entry{strings.ToLower(d), strings.TrimPrefix(strings.TrimLeft(n, " "), "*")}
		}
		if !isDigest(e.digest) {
			return "", fmt.Errorf("%w: line %q has no sha256 digest", ErrBadChecksum, line)
		}
		entries = append(entries, e)
	}
	if len(entries) == 1 {
		return entries[0].digest, nil
	}
	for _, e := range entries {
		if filepath.Base(e.name) == name {
			return e.digest, nil
		}
	}
	return "", fmt.Errorf("%w: no line for %s among %d", ErrBadChecksum, name, len(entries))
}

func isDigest(s string) bool {
	if len(s) != 2*sha256x.Size {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
