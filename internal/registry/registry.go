// Package registry resolves an image reference to an image — its manifest
// digest, config and layer list — and opens its layer blobs, from a
// registry (docker://, through go-containerregistry), an OCI layout
// directory (oci:) or a tar of one (oci-archive:, read in place).
//
// A multi-arch index resolves to the host's platform; a digest-pinned
// reference is checked against its digest; manifests and the config are
// checked against their digests here, layer blobs by whoever reads them
// (internal/ocilayer checks as it extracts). The errors a caller tells
// apart are typed: UnreachableError, UnauthorizedError, NotFoundError,
// DigestError, PlatformError, InsecureError.
package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imgbase/imgbase/internal/imageref"
	"github.com/imgbase/imgbase/internal/signature"
)

// Options configure a Client.
type Options struct {
	// AuthFiles are read in order for credentials (see AuthFiles).
	AuthFiles []string
	// Insecure lists registries ("host" or "host:port") that may be
	// reached over plain HTTP or with an unverified certificate, as
	// insecure_registries in imgbase's config. No other is.
	Insecure []string
	// RootCAs verify registries' certificates; nil means the system's.
	RootCAs *x509.CertPool
	// OS and Arch (and Variant, e.g. "v8" for arm64) pick an image from
	// a multi-arch index: the host's, runtime.GOOS and runtime.GOARCH.
	OS, Arch, Variant string
	Logger            *slog.Logger
}

// Client resolves references.
type Client struct {
	o Options
}

// New returns a Client.
func New(o Options) *Client {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.OS == "" {
		o.OS = "linux"
	}
	return &Client{o: o}
}

// Layer is one layer of an image, as its manifest and config name it.
type Layer struct {
	Digest      string // of the blob
	DiffID      string // of the uncompressed tar, from the config
	Size        int64  // of the blob
	MediaType   string
	Annotations map[string]string
}

// Image is a resolved image, ready to have its layers read.
type Image struct {
	Ref imageref.Ref
	// Digest is what the reference resolves to: the index's digest for
	// a multi-arch image, else the manifest's. A tracked tag has moved
	// when this changes.
	Digest string
	// ManifestDigest is the host platform's image manifest.
	ManifestDigest string
	Platform       string // "linux/amd64"
	ConfigDigest   string
	Config         *v1.ConfigFile
	Layers         []Layer

	src source
}

// Size is the sum of the layer blobs' sizes, what a pull downloads at most.
func (i *Image) Size() int64 {
	var n int64
	for _, l := range i.Layers {
		n += l.Size
	}
	return n
}

// Label returns the image config's label k.
func (i *Image) Label(k string) string {
	if i.Config == nil {
		return ""
	}
	return i.Config.Config.Labels[k]
}

// OpenLayer opens layer n's blob. Its bytes are not checked here: the
// reader checks them against Layers[n].Digest.
func (i *Image) OpenLayer(ctx context.Context, n int) (io.ReadCloser, error) {
	rc, err := i.src.blob(ctx, i.Layers[n].Digest)
	if err != nil {
		return nil, i.src.wrap(err, "layer "+i.Layers[n].Digest)
	}
	return rc, nil
}

// Close releases what the image holds open (an oci-archive's file).
func (i *Image) Close() error { return i.src.close() }

// source is where manifests and blobs come from.
type source interface {
	// top returns the manifest or index the reference names.
	top(ctx context.Context) ([]byte, types.MediaType, error)
	manifest(ctx context.Context, digest string) ([]byte, types.MediaType, error)
	blob(ctx context.Context, digest string) (io.ReadCloser, error)
	wrap(err error, what string) error
	close() error
}

// Resolve finds the image ref names, for the host's platform.
func (c *Client) Resolve(ctx context.Context, ref imageref.Ref) (*Image, error) {
	var src source
	var err error
	switch ref.Transport {
	case imageref.Docker:
		src, err = c.remote(ctx, ref)
	case imageref.OCI:
		src, err = openLayoutDir(ref)
	case imageref.OCIArchive:
		src, err = openLayoutArchive(ref)
	default:
		return nil, fmt.Errorf("cannot resolve %s: not an image in a registry or OCI layout", ref)
	}
	if err != nil {
		return nil, err
	}
	img, err := c.resolve(ctx, ref, src)
	if err != nil {
		src.close()
		return nil, err
	}
	return img, nil
}

func (c *Client) resolve(ctx context.Context, ref imageref.Ref, src source) (*Image, error) {
	body, mt, err := src.top(ctx)
	if err != nil {
		return nil, src.wrap(err, "manifest")
	}
	img := &Image{Ref: ref, Digest: digestOf(body), src: src}
	if ref.Digest != "" && img.Digest != ref.Digest {
		return nil, &DigestError{What: "manifest of " + ref.String(), Want: ref.Digest, Got: img.Digest}
	}
	if mt == "" {
		mt = sniffMediaType(body)
	}
	img.ManifestDigest = img.Digest
	if mt.IsIndex() {
		idx, err := v1.ParseIndexManifest(bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("cannot read the index of %s: %w", ref, err)
		}
		d, err := c.pick(ref, idx)
		if err != nil {
			return nil, err
		}
		img.ManifestDigest = d.Digest.String()
		if body, mt, err = src.manifest(ctx, img.ManifestDigest); err != nil {
			return nil, src.wrap(err, "manifest "+img.ManifestDigest)
		}
		if got := digestOf(body); got != img.ManifestDigest {
			return nil, &DigestError{What: "manifest of " + ref.String(), Want: img.ManifestDigest, Got: got}
		}
		if mt == "" {
			mt = sniffMediaType(body)
		}
	}
	if !mt.IsImage() {
		return nil, fmt.Errorf("cannot use %s: it is a %s, not an image", ref, mt)
	}
	m, err := v1.ParseManifest(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("cannot read the manifest of %s: %w", ref, err)
	}
	img.ConfigDigest = m.Config.Digest.String()
	rc, err := src.blob(ctx, img.ConfigDigest)
	if err != nil {
		return nil, src.wrap(err, "config "+img.ConfigDigest)
	}
	cfgBytes, err := io.ReadAll(io.LimitReader(rc, 16<<20))
	rc.Close()
	if err != nil {
		return nil, src.wrap(err, "config "+img.ConfigDigest)
	}
	if got := digestOf(cfgBytes); got != img.ConfigDigest {
		return nil, &DigestError{What: "config of " + ref.String(), Want: img.ConfigDigest, Got: got}
	}
	if img.Config, err = v1.ParseConfigFile(bytes.NewReader(cfgBytes)); err != nil {
		return nil, fmt.Errorf("cannot read the config of %s: %w", ref, err)
	}
	img.Platform = platformString(img.Config.OS, img.Config.Architecture, img.Config.Variant)
	diffs := img.Config.RootFS.DiffIDs
	if len(diffs) != len(m.Layers) {
		return nil, fmt.Errorf("cannot use %s: its manifest has %d layers, its config %d diffIDs", ref, len(m.Layers), len(diffs))
	}
	for i, l := range m.Layers {
		if l.Digest.Algorithm != "sha256" {
			return nil, fmt.Errorf("cannot use %s: layer %d has a %s digest, only sha256 is supported", ref, i, l.Digest.Algorithm)
		}
		img.Layers = append(img.Layers, Layer{Digest: l.Digest.String(), DiffID: diffs[i].String(), Size: l.Size, MediaType: string(l.MediaType), Annotations: l.Annotations})
	}
	return img, nil
}

// Digest returns what ref resolves to now (an index's or a manifest's
// digest, as Image.Digest), with a HEAD request where the registry
// answers one: what `update --check` compares with the installed base's.
func (c *Client) Digest(ctx context.Context, ref imageref.Ref) (string, error) {
	if ref.Transport != imageref.Docker {
		img, err := c.Resolve(ctx, ref)
		if err != nil {
			return "", err
		}
		img.Close()
		return img.Digest, nil
	}
	src, err := c.remote(ctx, ref)
	if err != nil {
		return "", err
	}
	rs := src.(*remoteSource)
	d, err := remote.Head(rs.ref, rs.opts...)
	if err != nil {
		// Some registries refuse HEAD on manifests; GET then.
		body, _, gerr := rs.top(ctx)
		if gerr != nil {
			return "", rs.wrap(gerr, "manifest")
		}
		return digestOf(body), nil
	}
	if ref.Digest != "" && d.Digest.String() != ref.Digest {
		return "", &DigestError{What: "manifest of " + ref.String(), Want: ref.Digest, Got: d.Digest.String()}
	}
	return d.Digest.String(), nil
}

// Signatures returns the cosign signatures stored beside img for digest
// (img.Digest, or img.ManifestDigest for a per-platform signature): the
// layers of the tag signature.Tag(digest). None is not an error; only
// registries hold signatures here, not OCI layouts.
func (c *Client) Signatures(ctx context.Context, img *Image, digest string) ([]signature.Signature, error) {
	if img.Ref.Transport != imageref.Docker {
		return nil, nil
	}
	tag, err := signature.Tag(digest)
	if err != nil {
		return nil, err
	}
	sig, err := c.Resolve(ctx, imageref.Ref{Transport: imageref.Docker, Name: img.Ref.Name, Tag: tag})
	var nf *NotFoundError
	if errors.As(err, &nf) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer sig.Close()
	var out []signature.Signature
	for i, l := range sig.Layers {
		if l.MediaType != signature.PayloadMediaType {
			continue
		}
		rc, err := sig.OpenLayer(ctx, i)
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(io.LimitReader(rc, 1<<20))
		rc.Close()
		if err != nil {
			return nil, sig.src.wrap(err, "signature "+l.Digest)
		}
		if got := digestOf(b); got != l.Digest {
			return nil, &DigestError{What: "signature of " + img.Ref.String(), Want: l.Digest, Got: got}
		}
		out = append(out, signature.Signature{Payload: b, Base64: l.Annotations[signature.Annotation]})
	}
	return out, nil
}

// pick chooses the host's image from an index.
func (c *Client) pick(ref imageref.Ref, idx *v1.IndexManifest) (v1.Descriptor, error) {
	var have []string
	for _, d := range idx.Manifests {
		if d.Platform == nil {
			continue
		}
		p := d.Platform
		if p.OS == "unknown" {
			continue // buildkit's attestation manifests
		}
		have = append(have, platformString(p.OS, p.Architecture, p.Variant))
		if p.OS == c.o.OS && p.Architecture == c.o.Arch && (c.o.Variant == "" || p.Variant == c.o.Variant) {
			return d, nil
		}
	}
	return v1.Descriptor{}, &PlatformError{Ref: ref.String(), Want: platformString(c.o.OS, c.o.Arch, c.o.Variant), Have: have}
}

func platformString(os, arch, variant string) string {
	s := os + "/" + arch
	if variant != "" {
		s += "/" + variant
	}
	return s
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// sniffMediaType reads mediaType from a manifest's body, for sources that
// do not say (an OCI layout's index.json entry may omit it).
func sniffMediaType(b []byte) types.MediaType {
	var m struct {
		MediaType string          `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
	}
	json.Unmarshal(b, &m)
	switch {
	case m.MediaType != "":
		return types.MediaType(m.MediaType)
	case m.Manifests != nil:
		return types.OCIImageIndex
	}
	return types.OCIManifestSchema1
}

// remote is a registry source.
type remoteSource struct {
	c    *Client
	ref  name.Reference
	opts []remote.Option
	cred *Credentials
	auth authn.Authenticator
	rt   http.RoundTripper // authenticated, made on the first blob
}

func (c *Client) remote(ctx context.Context, ref imageref.Ref) (source, error) {
	s := ref.Name + ":" + ref.Tag
	if ref.Digest != "" {
		s = ref.Name + "@" + ref.Digest
	}
	nopts := []name.Option{}
	reg := strings.SplitN(ref.Name, "/", 2)[0]
	if c.insecure(reg) {
		nopts = append(nopts, name.Insecure)
	}
	r, err := name.ParseReference(s, nopts...)
	if err != nil {
		return nil, fmt.Errorf("cannot use %s: %w", ref, err)
	}
	cred, err := lookupAuth(c.o.AuthFiles, r.Context().Name())
	if err != nil {
		return nil, err
	}
	auth := authn.Anonymous
	if cred != nil {
		auth = authn.FromConfig(authn.AuthConfig{Username: cred.Username, Password: cred.Password})
		c.o.Logger.Debug("registry credentials", "registry", reg, "file", cred.File)
	}
	return &remoteSource{c: c, ref: r, cred: cred, auth: auth, opts: []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuth(auth),
		remote.WithTransport(c.transport()),
		remote.WithPlatform(v1.Platform{OS: c.o.OS, Architecture: c.o.Arch, Variant: c.o.Variant}),
		// One retry: an unreachable registry is reported in seconds,
		// and the timer runs again tomorrow.
		remote.WithRetryBackoff(remote.Backoff{Duration: time.Second, Factor: 2, Steps: 2}),
		remote.WithUserAgent("imgbase"),
	}}, nil
}

func (c *Client) insecure(registry string) bool {
	host, _, err := net.SplitHostPort(registry)
	if err != nil {
		host = registry
	}
	return slices.Contains(c.o.Insecure, registry) || slices.Contains(c.o.Insecure, host)
}

// transport enforces the insecure list: go-containerregistry itself falls
// back to plain HTTP for any loopback or private address, imgbase only
// for a registry the admin listed.
func (c *Client) transport() http.RoundTripper {
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.TLSClientConfig = &tls.Config{RootCAs: c.o.RootCAs, MinVersion: tls.VersionTLS12}
	lax := base.Clone()
	lax.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		if !c.insecure(req.URL.Host) {
			if req.URL.Scheme != "https" {
				return nil, &InsecureError{Registry: req.URL.Host}
			}
			return base.RoundTrip(req)
		}
		return lax.RoundTrip(req)
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (s *remoteSource) top(ctx context.Context) ([]byte, types.MediaType, error) {
	d, err := remote.Get(s.ref, s.opts...)
	if err != nil {
		return nil, "", err
	}
	return d.Manifest, d.MediaType, nil
}

func (s *remoteSource) manifest(ctx context.Context, digest string) ([]byte, types.MediaType, error) {
	d, err := remote.Get(s.ref.Context().Digest(digest), s.opts...)
	if err != nil {
		return nil, "", err
	}
	return d.Manifest, d.MediaType, nil
}

// blob streams a blob unverified: its reader checks it (ocilayer as it
// extracts, resolve for the config), so it is hashed once, not twice.
func (s *remoteSource) blob(ctx context.Context, digest string) (io.ReadCloser, error) {
	if s.rt == nil {
		rt, err := transport.NewWithContext(ctx, s.ref.Context().Registry, s.auth, s.c.transport(),
			[]string{s.ref.Scope(transport.PullScope)})
		if err != nil {
			return nil, err
		}
		s.rt = rt
	}
	repo := s.ref.Context()
	// The scheme is the one the ping settled on; the transport sets it.
	u := fmt.Sprintf("%s://%s/v2/%s/blobs/%s", repo.Scheme(), repo.RegistryStr(), repo.RepositoryStr(), digest)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Transport: s.rt}).Do(req)
	if err != nil {
		return nil, err
	}
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return resp.Body, nil
}

func (s *remoteSource) close() error { return nil }

// wrap turns go-containerregistry's errors into the typed ones.
func (s *remoteSource) wrap(err error, what string) error {
	reg := s.ref.Context().RegistryStr()
	// The https attempt's certificate error comes before the refused
	// plain-HTTP fallback: it says what is actually wrong.
	var ce *tls.CertificateVerificationError
	if errors.As(err, &ce) {
		return &UnreachableError{Registry: reg, Err: fmt.Errorf("its certificate is not trusted: %w", ce.Err)}
	}
	var ie *InsecureError
	if errors.As(err, &ie) {
		return ie
	}
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			ue := &UnauthorizedError{Registry: reg, Status: te.StatusCode, Fill: s.c.o.AuthFiles}
			if s.cred != nil {
				ue.Used = s.cred.File
			}
			return ue
		case http.StatusNotFound:
			return &NotFoundError{Ref: "docker://" + s.ref.String(), What: what}
		}
		for _, d := range te.Errors {
			switch d.Code {
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
				return &NotFoundError{Ref: "docker://" + s.ref.String(), What: what}
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return &UnauthorizedError{Registry: reg, Status: te.StatusCode, Fill: s.c.o.AuthFiles}
			}
		}
		return fmt.Errorf("cannot read %s of docker://%s: %w", what, s.ref, err)
	}
	if strings.Contains(err.Error(), "does not match requested digest") {
		return &DigestError{What: what + " of docker://" + s.ref.String(), Want: s.ref.Identifier(), Got: "other content"}
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &oe) || errors.As(err, &ne) {
		return &UnreachableError{Registry: reg, Err: err}
	}
	return fmt.Errorf("cannot read %s of docker://%s: %w", what, s.ref, err)
}
