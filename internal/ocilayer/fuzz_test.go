package ocilayer

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzApplyStaysInside: whatever tar a layer holds, Apply writes nothing
// outside the root and removes nothing outside it.
func FuzzApplyStaysInside(f *testing.F) {
	for _, es := range [][]entry{
		{{name: "evil", typ: tar.TypeSymlink, link: "/"}, {name: "evil/x", data: []byte("x")}},
		{{name: "up", typ: tar.TypeSymlink, link: "../.."}, {name: "up/.wh.OUTSIDE"}},
		{{name: "up", typ: tar.TypeSymlink, link: "../OUTSIDE"}, {name: "up/.wh..wh..opq"}},
		{{name: "s", typ: tar.TypeLink, link: "../OUTSIDE/victim"}},
		{{name: "d/", typ: tar.TypeDir}, {name: "d/f", data: []byte("f")}, {name: ".wh.d"}},
	} {
		var b bytes.Buffer
		w := tar.NewWriter(&b)
		for _, e := range es {
			h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.data))}
			if h.Typeflag == 0 {
				h.Typeflag = tar.TypeReg
			}
			w.WriteHeader(h)
			w.Write(e.data)
		}
		w.Close()
		f.Add(b.Bytes())
	}
	f.Fuzz(func(t *testing.T, blob []byte) {
		top := t.TempDir()
		outside := filepath.Join(top, "OUTSIDE")
		os.Mkdir(outside, 0o755)
		os.WriteFile(filepath.Join(outside, "victim"), []byte("victim"), 0o644)
		root := filepath.Join(top, "a", "root")
		os.MkdirAll(root, 0o755)
		r, err := Open(root)
		if err != nil {
			t.Fatal(err)
		}
		r.MaxExpansion = 1 << 20
		r.Apply(context.Background(), bytes.NewReader(blob), Layer{Digest: digest(blob)}, nil)
		r.Close()
		var found []string
		filepath.Walk(top, func(p string, info os.FileInfo, err error) error {
			if p == root {
				return filepath.SkipDir
			}
			found = append(found, strings.TrimPrefix(p, top))
			return nil
		})
		if strings.Join(found, " ") != " /OUTSIDE /OUTSIDE/victim /a" {
			t.Fatalf("outside the root: %q", found)
		}
		if data, _ := os.ReadFile(filepath.Join(outside, "victim")); string(data) != "victim" {
			t.Fatalf("victim now %q", data)
		}
		if st := lstat(t, filepath.Join(outside, "victim")); st.Nlink != 1 {
			t.Fatalf("victim has %d links", st.Nlink)
		}
	})
}
