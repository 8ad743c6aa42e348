package registry

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imgbase/imgbase/internal/imageref"
)

// refNameAnnotation names an image in an OCI layout's index.json.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// layoutSource reads an OCI image layout from a file system: a directory
// (oci:) or a tar of one (oci-archive:), read in place through an index
// of its members so that no copy is made.
type layoutSource struct {
	ref    imageref.Ref
	fsys   fs.FS
	closer io.Closer
}

func openLayoutDir(ref imageref.Ref) (source, error) {
	if _, err := os.Stat(path.Join(ref.Path, "index.json")); err != nil {
		return nil, fmt.Errorf("cannot use %s: not an OCI layout: %w", ref, err)
	}
	return &layoutSource{ref: ref, fsys: os.DirFS(ref.Path)}, nil
}

func openLayoutArchive(ref imageref.Ref) (source, error) {
	f, err := os.Open(ref.Path)
	if err != nil {
		return nil, fmt.Errorf("cannot use %s: %w", ref, err)
	}
	t, err := indexTar(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot use %s: %w", ref, err)
	}
	return &layoutSource{ref: ref, fsys: t, closer: f}, nil
}

func (s *layoutSource) close() error {
	if s.closer != nil {
		return s.closer.Close()
	}
	return nil
}

func (s *layoutSource) wrap(err error, what string) error {
	var nf *NotFoundError
	var de *DigestError
	if errors.As(err, &nf) || errors.As(err, &de) {
		return err
	}
	if errors.Is(err, fs.ErrNotExist) {
		return &NotFoundError{Ref: s.ref.String(), What: what}
	}
	return fmt.Errorf("cannot read %s of %s: %w", what, s.ref, err)
}

func (s *layoutSource) top(ctx context.Context) ([]byte, types.MediaType, error) {
	data, err := fs.ReadFile(s.fsys, "index.json")
	if err != nil {
		return nil, "", err
	}
	var idx struct {
		Manifests []struct {
			MediaType   types.MediaType   `json:"mediaType"`
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, "", fmt.Errorf("index.json: %w", err)
	}
	var names []string
	match := -1
	for i, m := range idx.Manifests {
		n := m.Annotations[refNameAnnotation]
		names = append(names, n)
		if (s.ref.Tag != "" && n == s.ref.Tag) || (s.ref.Tag == "" && len(idx.Manifests) == 1) {
			match = i
		}
	}
	if match < 0 {
		if s.ref.Tag == "" {
			return nil, "", fmt.Errorf("the layout holds %d images (%s): name one with :TAG", len(names), strings.Join(names, ", "))
		}
		return nil, "", &NotFoundError{Ref: s.ref.String(), What: "manifest",
			Detail: fmt.Sprintf("no image tagged %q (tags: %s)", s.ref.Tag, strings.Join(names, ", "))}
	}
	m := idx.Manifests[match]
	body, _, err := s.manifest(ctx, m.Digest)
	if err != nil {
		return nil, "", err
	}
	if got := digestOf(body); got != m.Digest {
		return nil, "", &DigestError{What: "manifest of " + s.ref.String(), Want: m.Digest, Got: got}
	}
	return body, m.MediaType, nil
}

func (s *layoutSource) manifest(ctx context.Context, digest string) ([]byte, types.MediaType, error) {
	rc, err := s.blob(ctx, digest)
	if err != nil {
		return nil, "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 4<<20))
	return b, "", err
}

func (s *layoutSource) blob(ctx context.Context, digest string) (io.ReadCloser, error) {
	alg, hex, ok := strings.Cut(digest, ":")
	if !ok || alg != "sha256" || len(hex) != 64 || strings.ContainsAny(hex, "/.") {
		return nil, fmt.Errorf("%q is not a sha256 digest", digest)
	}
	return s.fsys.Open("blobs/sha256/" + hex)
}

// tarFS is a read-only fs.FS over a tar's regular files, each read in
// place from the archive.
type tarFS struct {
	r       io.ReaderAt
	members map[string]member
}

type member struct{ off, size int64 }

func indexTar(f *os.File) (*tarFS, error) {
	t := &tarFS{r: f, members: map[string]member{}}
	cr := &countReader{r: f}
	tr := tar.NewReader(cr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return t, nil
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeRegA {
			// The reader has consumed exactly the header blocks: the
			// data starts here and is contiguous (no sparse members in
			// an OCI archive; those are refused).
			t.members[path.Clean(strings.TrimPrefix(h.Name, "./"))] = member{cr.n, h.Size}
		} else if h.Typeflag == tar.TypeGNUSparse {
			return nil, fmt.Errorf("member %s is sparse", h.Name)
		}
	}
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (t *tarFS) Open(name string) (fs.File, error) {
	m, ok := t.members[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &tarFile{SectionReader: io.NewSectionReader(t.r, m.off, m.size), name: name}, nil
}

type tarFile struct {
	*io.SectionReader
	name string
}

func (f *tarFile) Stat() (fs.FileInfo, error) { return nil, errors.New("not supported") }
func (f *tarFile) Close() error               { return nil }
