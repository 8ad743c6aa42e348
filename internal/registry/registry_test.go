package registry

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imgbase/imgbase/internal/imageref"
	"github.com/imgbase/imgbase/internal/ocilayer"
	"github.com/imgbase/imgbase/internal/signature"
)

func tarOf(t *testing.T, files map[string]string) []byte {
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	for n, c := range files {
		w.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(c)), Typeflag: tar.TypeReg})
		w.Write([]byte(c))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func layer(t *testing.T, files map[string]string) v1.Layer {
	data := tarOf(t, files)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// testImage has two gzip layers, a label and the given architecture.
func testImage(t *testing.T, arch, nvr string) v1.Image {
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1),
		layer(t, map[string]string{"etc/os-release": "v1 " + arch}),
		layer(t, map[string]string{"usr/share/imgbase/build/meta/nvr": nvr}))
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Config.Labels = map[string]string{"imgbase.nvr": nvr}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// serve starts go-containerregistry's in-memory registry on 127.0.0.1,
// behind wrap when given.
func serve(t *testing.T, wrap func(http.Handler) http.Handler) (host string) {
	var h http.Handler = ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	if wrap != nil {
		h = wrap(h)
	}
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

func push(t *testing.T, host, repoTag string, img v1.Image) string {
	ref, err := name.ParseReference(host+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return d.String()
}

func client(host string, files ...string) *Client {
	return New(Options{Insecure: []string{host}, Arch: "amd64", AuthFiles: files})
}

func parse(t *testing.T, s string) imageref.Ref {
	r, err := imageref.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestResolveTagAndDigest(t *testing.T) {
	host := serve(t, nil)
	img := testImage(t, "amd64", "Base-2-0")
	digest := push(t, host, "os/base:2.0", img)
	c := client(host)
	for _, s := range []string{"docker://" + host + "/os/base:2.0", "docker://" + host + "/os/base@" + digest} {
		got, err := c.Resolve(context.Background(), parse(t, s))
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if got.Digest != digest || got.ManifestDigest != digest || got.Platform != "linux/amd64" || got.Label("imgbase.nvr") != "Base-2-0" {
			t.Errorf("%s: %+v", s, got)
		}
		ls, _ := img.Layers()
		if len(got.Layers) != 2 {
			t.Fatalf("%d layers", len(got.Layers))
		}
		var sum int64
		for i, l := range ls {
			d, _ := l.Digest()
			diff, _ := l.DiffID()
			size, _ := l.Size()
			sum += size
			if got.Layers[i].Digest != d.String() || got.Layers[i].DiffID != diff.String() || got.Layers[i].Size != size {
				t.Errorf("layer %d: %+v", i, got.Layers[i])
			}
			rc, err := got.OpenLayer(context.Background(), i)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			want, _ := l.Compressed()
			wb, _ := io.ReadAll(want)
			if err != nil || !bytes.Equal(b, wb) {
				t.Errorf("layer %d blob differs: %v", i, err)
			}
		}
		if got.Size() != sum {
			t.Errorf("Size %d, want %d", got.Size(), sum)
		}
	}
}

func TestNotFound(t *testing.T) {
	host := serve(t, nil)
	push(t, host, "os/base:2.0", testImage(t, "amd64", "Base-2-0"))
	c := client(host)
	for _, s := range []string{
		"docker://" + host + "/os/base:3.0",
		"docker://" + host + "/os/other:2.0",
		"docker://" + host + "/os/base@sha256:" + strings.Repeat("0", 64),
	} {
		_, err := c.Resolve(context.Background(), parse(t, s))
		var nf *NotFoundError
		if !errors.As(err, &nf) || !strings.Contains(err.Error(), "not found: no such tag or digest") {
			t.Errorf("%s: %v", s, err)
		}
	}
}

func TestPlainHTTPOnlyWhenListed(t *testing.T) {
	host := serve(t, nil)
	push(t, host, "os/base:2.0", testImage(t, "amd64", "Base-2-0"))
	_, err := New(Options{Arch: "amd64"}).Resolve(context.Background(), parse(t, "docker://"+host+"/os/base:2.0"))
	var ie *InsecureError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "insecure_registries") {
		t.Fatalf("plain HTTP to an unlisted registry: %v", err)
	}
	// Listed by host alone, without the port.
	h, _, _ := net.SplitHostPort(host)
	if _, err := New(Options{Arch: "amd64", Insecure: []string{h}}).Resolve(context.Background(), parse(t, "docker://"+host+"/os/base:2.0")); err != nil {
		t.Fatal(err)
	}
}

func TestTLS(t *testing.T) {
	s := httptest.NewUnstartedServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.StartTLS()
	t.Cleanup(s.Close)
	host := strings.TrimPrefix(s.URL, "https://")
	ref, _ := name.ParseReference(host + "/os/base:2.0")
	img := testImage(t, "amd64", "Base-2-0")
	if err := remote.Write(ref, img, remote.WithTransport(s.Client().Transport)); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())
	got, err := New(Options{Arch: "amd64", RootCAs: pool}).Resolve(context.Background(), parse(t, "docker://"+host+"/os/base:2.0"))
	if err != nil || got.Label("imgbase.nvr") != "Base-2-0" {
		t.Fatalf("trusted TLS: %v", err)
	}
	// The system's CAs do not know the test server's certificate.
	_, err = New(Options{Arch: "amd64"}).Resolve(context.Background(), parse(t, "docker://"+host+"/os/base:2.0"))
	var ue *UnreachableError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "certificate is not trusted") {
		t.Fatalf("untrusted certificate: %v", err)
	}
}

func TestUnreachable(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	host := l.Addr().String()
	l.Close()
	_, err := client(host).Resolve(context.Background(), parse(t, "docker://"+host+"/os/base:2.0"))
	var ue *UnreachableError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "cannot reach registry "+host) {
		t.Fatalf("%v", err)
	}
}

func basicAuth(user, pass string) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
}

func TestAuth(t *testing.T) {
	host := serve(t, basicAuth("alice", "s3cret"))
	img := testImage(t, "amd64", "Base-2-0")
	ref, _ := name.ParseReference(host+"/os/base:2.0", name.Insecure)
	if err := remote.Write(ref, img, remote.WithAuth(&basicAuthn{"alice", "s3cret"})); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	files := AuthFiles(root, "/root", "")
	s := "docker://" + host + "/os/base:2.0"

	_, err := client(host, files...).Resolve(context.Background(), parse(t, s))
	var ue *UnauthorizedError
	if !errors.As(err, &ue) || ue.Used != "" || !strings.Contains(err.Error(), "put them in "+filepath.Join(root, "etc/imgbased/auth.json")) {
		t.Fatalf("no credentials: %v", err)
	}

	// docker's file, with its URL-style key, is read last …
	write(t, filepath.Join(root, "root/.docker/config.json"), `{"auths":{"http://`+host+`/v1/":{"auth":"YWxpY2U6czNjcmV0"}}}`)
	if _, err := client(host, files...).Resolve(context.Background(), parse(t, s)); err != nil {
		t.Fatalf("docker config.json: %v", err)
	}
	// … and imgbase's own wins over it: wrong credentials there are used.
	write(t, filepath.Join(root, "etc/imgbased/auth.json"), `{"auths":{"`+host+`":{"username":"alice","password":"wrong"}}}`)
	_, err = client(host, files...).Resolve(context.Background(), parse(t, s))
	if !errors.As(err, &ue) || ue.Used != filepath.Join(root, "etc/imgbased/auth.json") || !strings.Contains(err.Error(), "refused the credentials from") {
		t.Fatalf("wrong credentials: %v", err)
	}
}

type basicAuthn struct{ u, p string }

func (b *basicAuthn) Authorization() (*authn.AuthConfig, error) {
	return &authn.AuthConfig{Username: b.u, Password: b.p}, nil
}

func write(t *testing.T, p, s string) {
	os.MkdirAll(filepath.Dir(p), 0o700)
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLookupAuth(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json")
	write(t, a, `{"auths":{"quay.io/org":{"auth":"b3JnOnA="},"quay.io":{"auth":"YW55OnE="}}}`)
	write(t, b, `{"auths":{"https://index.docker.io/v1/":{"auth":"aHViOnI="},"example.com":{"auth":"!!"}}}`)
	for _, c := range []struct{ repo, user, file string }{
		{"quay.io/org/img", "org", a},
		{"quay.io/other/img", "any", a},
		{"quay.io.evil.com/org/img", "", ""},
		{"index.docker.io/library/debian", "hub", b},
		{"ghcr.io/x/y", "", ""},
	} {
		cr, err := lookupAuth([]string{filepath.Join(dir, "missing.json"), a, b}, c.repo)
		if err != nil {
			t.Fatalf("%s: %v", c.repo, err)
		}
		if (cr == nil) != (c.user == "") || cr != nil && (cr.Username != c.user || cr.File != c.file) {
			t.Errorf("%s: %+v", c.repo, cr)
		}
	}
	if _, err := lookupAuth([]string{b}, "example.com/x"); err == nil || !strings.Contains(err.Error(), "not base64") {
		t.Errorf("malformed auth: %v", err)
	}
	write(t, a, `{not json`)
	if _, err := lookupAuth([]string{a}, "quay.io/x"); err == nil {
		t.Error("malformed file read as no credentials")
	}
}

func pushIndex(t *testing.T, host, repoTag string, arches ...string) string {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, a := range arches {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: testImage(t, a, "Base-2-0"),
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: a}}})
	}
	ref, _ := name.ParseReference(host+"/"+repoTag, name.Insecure)
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	return d.String()
}

func TestIndex(t *testing.T) {
	host := serve(t, nil)
	d := pushIndex(t, host, "os/base:multi", "amd64", "arm64")
	c := New(Options{Insecure: []string{host}, Arch: "arm64"})
	got, err := c.Resolve(context.Background(), parse(t, "docker://"+host+"/os/base:multi"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != d || got.ManifestDigest == d || got.Platform != "linux/arm64" {
		t.Errorf("%+v", got)
	}
	_, err = New(Options{Insecure: []string{host}, Arch: "s390x"}).Resolve(context.Background(), parse(t, "docker://"+host+"/os/base:multi"))
	var pe *PlatformError
	if !errors.As(err, &pe) || err.Error() != "image docker://"+host+"/os/base:multi has no linux/s390x image; it has: linux/amd64, linux/arm64" {
		t.Fatalf("%v", err)
	}
}

// tamper serves blob or manifest bodies with one byte changed.
func tamper(match string) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, match) {
				h.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			if len(body) > 0 {
				body[len(body)/2] ^= 1
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(body)
		})
	}
}

func TestCorruptBlobs(t *testing.T) {
	img := testImage(t, "amd64", "Base-2-0")
	cfg, _ := img.ConfigName()
	ls, _ := img.Layers()
	l0, _ := ls[0].Digest()
	dg, _ := img.Digest()
	t.Run("config", func(t *testing.T) {
		host := serve(t, tamper("/blobs/"+cfg.String()))
		push(t, host, "os/base:2.0", img)
		_, err := client(host).Resolve(context.Background(), parse(t, "docker://"+host+"/os/base:2.0"))
		var de *DigestError
		if !errors.As(err, &de) || de.Want != cfg.String() {
			t.Fatalf("%v", err)
		}
	})
	t.Run("layer", func(t *testing.T) {
		host := serve(t, tamper("/blobs/"+l0.String()))
		push(t, host, "os/base:2.0", img)
		got, err := client(host).Resolve(context.Background(), parse(t, "docker://"+host+"/os/base:2.0"))
		if err != nil {
			t.Fatal(err)
		}
		// The blob is streamed as served; ocilayer checks it as it
		// extracts, over the same bytes.
		rc, err := got.OpenLayer(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		root, err := ocilayer.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		_, err = root.Apply(context.Background(), rc, ocilayer.Layer{Digest: got.Layers[0].Digest, DiffID: got.Layers[0].DiffID}, nil)
		var de *ocilayer.DigestError
		if !errors.As(err, &de) {
			t.Fatalf("a corrupt layer applied: %v", err)
		}
	})
	t.Run("pinned-manifest", func(t *testing.T) {
		host := serve(t, tamper("/manifests/"))
		push(t, host, "os/base:2.0", img)
		_, err := client(host).Resolve(context.Background(), parse(t, "docker://"+host+"/os/base@"+dg.String()))
		if err == nil {
			t.Fatal("a tampered manifest accepted")
		}
		var de *DigestError
		if !errors.As(err, &de) || de.Want != dg.String() {
			t.Fatalf("not a DigestError: %v", err)
		}
	})
}

func writeLayout(t *testing.T, dir string) (map[string]string, v1.Image) {
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	digests := map[string]string{}
	var last v1.Image
	for _, tag := range []string{"1.0", "2.0"} {
		img := testImage(t, "amd64", "Base-"+strings.TrimSuffix(tag, ".0")+"-0")
		if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{refNameAnnotation: tag})); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		digests[tag] = d.String()
		last = img
	}
	return digests, last
}

func tarDir(t *testing.T, dir, out string) {
	f, _ := os.Create(out)
	w := tar.NewWriter(f)
	if err := w.AddFS(os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	f.Close()
}

func TestLayouts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	digests, img := writeLayout(t, dir)
	archive := filepath.Join(t.TempDir(), "img.tar")
	tarDir(t, dir, archive)
	c := New(Options{Arch: "amd64"})
	for _, prefix := range []string{"oci:" + dir, "oci-archive:" + archive} {
		got, err := c.Resolve(context.Background(), parse(t, prefix+":2.0"))
		if err != nil {
			t.Fatalf("%s: %v", prefix, err)
		}
		if got.Digest != digests["2.0"] || got.Label("imgbase.nvr") != "Base-2-0" {
			t.Errorf("%s: %+v", prefix, got)
		}
		ls, _ := img.Layers()
		rc, err := got.OpenLayer(context.Background(), 1)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		want, _ := ls[1].Compressed()
		wb, _ := io.ReadAll(want)
		if !bytes.Equal(b, wb) {
			t.Errorf("%s: layer differs", prefix)
		}
		got.Close()

		_, err = c.Resolve(context.Background(), parse(t, prefix+":9.9"))
		var nf *NotFoundError
		if !errors.As(err, &nf) || !strings.Contains(err.Error(), `no image tagged "9.9" (tags: 1.0, 2.0)`) {
			t.Errorf("%s: unknown tag: %v", prefix, err)
		}
		_, err = c.Resolve(context.Background(), parse(t, prefix))
		if err == nil || !strings.Contains(err.Error(), "holds 2 images (1.0, 2.0): name one with :TAG") {
			t.Errorf("%s: no tag: %v", prefix, err)
		}
	}
	// A corrupt manifest in the layout is caught.
	h := strings.TrimPrefix(digests["1.0"], "sha256:")
	mp := filepath.Join(dir, "blobs/sha256", h)
	b, _ := os.ReadFile(mp)
	os.WriteFile(mp, append(b, ' '), 0o644)
	_, err := c.Resolve(context.Background(), parse(t, "oci:"+dir+":1.0"))
	var de *DigestError
	if !errors.As(err, &de) {
		t.Errorf("corrupt manifest: %v", err)
	}
}

// TestSignatures: a signature image pushed in cosign's format, made with
// Go, is found and verifies; a tag without one has none.
func TestSignatures(t *testing.T) {
	host := serve(t, nil)
	img := testImage(t, "amd64", "Base-2-0")
	d := push(t, host, "os/base:2.0", img)
	push(t, host, "os/base:unsigned", testImage(t, "amd64", "Base-3-0"))

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	payload := signature.NewPayload(host+"/os/base", d)
	h := sha256.Sum256(payload)
	sig, _ := ecdsa.SignASN1(rand.Reader, key, h[:])
	sigImg, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1), mutate.Addendum{
		Layer:       static.NewLayer(payload, signature.PayloadMediaType),
		Annotations: map[string]string{signature.Annotation: base64.StdEncoding.EncodeToString(sig)},
	})
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := signature.Tag(d)
	push(t, host, "os/base:"+tag, sigImg)

	c := client(host)
	got, err := c.Resolve(context.Background(), parse(t, "docker://"+host+"/os/base:2.0"))
	if err != nil {
		t.Fatal(err)
	}
	sigs, err := c.Signatures(context.Background(), got, got.Digest)
	if err != nil || len(sigs) != 1 {
		t.Fatalf("%d signatures, %v", len(sigs), err)
	}
	keys := []signature.Key{{Name: "k.pub", Pub: &key.PublicKey}}
	if name, err := signature.Verify(got.Ref.String(), got.Digest, keys, sigs); err != nil || name != "k.pub" {
		t.Fatalf("verify: %q %v", name, err)
	}
	unsigned, _ := c.Resolve(context.Background(), parse(t, "docker://"+host+"/os/base:unsigned"))
	sigs, err = c.Signatures(context.Background(), unsigned, unsigned.Digest)
	if err != nil || len(sigs) != 0 {
		t.Fatalf("unsigned: %d signatures, %v", len(sigs), err)
	}
	if _, err := signature.Verify(unsigned.Ref.String(), unsigned.Digest, keys, sigs); err == nil {
		t.Fatal("unsigned image verified")
	}
}

// TestDigest: the cheap check sees a tag move, by HEAD alone.
func TestDigest(t *testing.T) {
	var gets atomic.Int32
	host := serve(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/") {
				gets.Add(1)
			}
			h.ServeHTTP(w, r)
		})
	})
	c := client(host)
	ref := parse(t, "docker://"+host+"/os/base:stable")
	d1 := push(t, host, "os/base:stable", testImage(t, "amd64", "Base-1-0"))
	got, err := c.Digest(context.Background(), ref)
	if err != nil || got != d1 {
		t.Fatalf("Digest = %s, %v; want %s", got, err, d1)
	}
	d2 := push(t, host, "os/base:stable", testImage(t, "amd64", "Base-2-0"))
	if got, err = c.Digest(context.Background(), ref); err != nil || got != d2 || d1 == d2 {
		t.Fatalf("after the tag moved: %s, %v; want %s", got, err, d2)
	}
	if gets.Load() != 0 {
		t.Errorf("%d manifest GETs; HEAD should do", gets.Load())
	}
	idx := pushIndex(t, host, "os/base:multi", "amd64", "arm64")
	if got, err = c.Digest(context.Background(), parse(t, "docker://"+host+"/os/base:multi")); err != nil || got != idx {
		t.Errorf("index: %s, %v; want %s", got, err, idx)
	}
	var nf *NotFoundError
	if _, err = c.Digest(context.Background(), parse(t, "docker://"+host+"/os/base:gone")); !errors.As(err, &nf) {
		t.Errorf("unknown tag: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	digests, _ := writeLayout(t, dir)
	if got, err = c.Digest(context.Background(), parse(t, "oci:"+dir+":1.0")); err != nil || got != digests["1.0"] {
		t.Errorf("layout: %s, %v", got, err)
	}
}
