package journal

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// world is a fake host kept in a directory, so that a process killed in the
// middle of a transaction leaves it on disk for another to recover: LVs are
// files under lv/ (mode 0444 when sealed), boot entries files under boot/,
// the default entry the file "default".
type world struct{ dir string }

func newWorld(t testing.TB) world {
	t.Helper()
	w := world{dir: t.TempDir()}
	for _, d := range []string{"lv", "boot", "var"} {
		if err := os.Mkdir(w.path(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The running system: an old base, the current base and its layer.
	for name, content := range map[string]string{
		"lv/Base-0-9":          "v0.9\n",
		"lv/Base-1-0":          "v1\netc=shipped\n",
		"lv/Base-1-0+1":        "v1\netc=admin\n",
		"lv/Base-1-0+1.etc":    "etc=admin\n",
		"boot/Base-1-0+1.conf": "Base-1-0+1\n",
		"default":              "Base-1-0+1\n",
	} {
		if err := os.WriteFile(w.path(name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range []string{"lv/Base-0-9", "lv/Base-1-0"} {
		if err := os.Chmod(w.path(b), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func (w world) path(p string) string { return filepath.Join(w.dir, p) }

// state returns every file of the world with its mode and content.
func (w world) state(t testing.TB) map[string]string {
	t.Helper()
	st := map[string]string{}
	err := filepath.WalkDir(w.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(w.dir, p)
		if strings.HasPrefix(rel, "var/") {
			return nil // the journal itself
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		st[rel] = fmt.Sprintf("%v %q", info.Mode().Perm(), data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func diffState(got, want map[string]string) string {
	union := maps.Clone(got)
	maps.Copy(union, want)
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(union)) {
		if got[k] != want[k] {
			fmt.Fprintf(&b, "  %s: got %s, want %s\n", k, orNone(got[k]), orNone(want[k]))
		}
	}
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// kinds are the world's step implementations. As with lvm2, creating an LV
// that exists fails, so a Do run twice is noticed; every Undo copes with an
// object that exists or not.
func (w world) kinds() Kinds {
	exclusive := func(name, content string, perm os.FileMode) error {
		f, err := os.OpenFile(w.path(name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if err != nil {
			return err
		}
		if _, err := f.WriteString(content); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	remove := func(name string) error {
		if err := os.Remove(w.path(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	appendTo := func(name, content string) error {
		f, err := os.OpenFile(w.path(name), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return err
		}
		if _, err := f.WriteString(content); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	return Kinds{
		"create-base": {
			Do:   func(_ context.Context, a Args) error { return exclusive("lv/"+a["lv"], "", 0o644) },
			Undo: func(_ context.Context, a Args) error { return remove("lv/" + a["lv"]) },
		},
		// write-image has no registered Do: the live run brings its own
		// (an open image); its undo is the base's removal.
		"write-image": {},
		"seal-base": {
			Do: func(_ context.Context, a Args) error { return os.Chmod(w.path("lv/"+a["lv"]), 0o444) },
		},
		"create-layer": {
			Do: func(_ context.Context, a Args) error {
				data, err := os.ReadFile(w.path("lv/" + a["origin"]))
				if err != nil {
					return err
				}
				return exclusive("lv/"+a["lv"], string(data), 0o644)
			},
			Undo: func(_ context.Context, a Args) error { return remove("lv/" + a["lv"]) },
		},
		"new-uuid": {
			Do: func(_ context.Context, a Args) error { return appendTo("lv/"+a["lv"], "uuid=new\n") },
		},
		"migrate-etc": {
			Do: func(_ context.Context, a Args) error {
				etc, err := os.ReadFile(w.path("lv/" + a["from"] + ".etc"))
				if err != nil {
					return err
				}
				return appendTo("lv/"+a["to"], string(etc))
			},
		},
		"boot-entry": {
			Do: func(_ context.Context, a Args) error {
				return exclusive("boot/"+a["layer"]+".conf", a["layer"]+"\n", 0o644)
			},
			Undo: func(_ context.Context, a Args) error { return remove("boot/" + a["layer"] + ".conf") },
		},
		"set-default": {
			Do: func(_ context.Context, a Args) error {
				return os.WriteFile(w.path("default"), []byte(a["layer"]+"\n"), 0o644)
			},
			Undo: func(_ context.Context, a Args) error {
				return os.WriteFile(w.path("default"), []byte(a["previous"]+"\n"), 0o644)
			},
		},
		"write-report": {
			Do: func(_ context.Context, a Args) error {
				return os.WriteFile(w.path("report"), []byte("updated to "+a["layer"]+"\n"), 0o644)
			},
		},
		"remove-base": {
			Do: func(_ context.Context, a Args) error { return remove("lv/" + a["lv"]) },
		},
	}
}

// updateTx is an update from Base-1-0+1 to a new base Base-2-0 that
// collects the old Base-0-9 after the commit.
func (w world) updateTx() Tx {
	return Tx{
		Name: "update",
		Steps: []Step{
			{Kind: "create-base", Args: Args{"lv": "Base-2-0"}},
			{Kind: "write-image", Args: Args{"lv": "Base-2-0"}, Do: func(context.Context) error {
				return os.WriteFile(w.path("lv/Base-2-0"), []byte("v2\netc=shipped2\n"), 0o644)
			}},
			{Kind: "seal-base", Args: Args{"lv": "Base-2-0"}},
			{Kind: "create-layer", Args: Args{"lv": "Base-2-0+1", "origin": "Base-2-0"}},
			{Kind: "new-uuid", Args: Args{"lv": "Base-2-0+1"}},
			{Kind: "migrate-etc", Args: Args{"from": "Base-1-0+1", "to": "Base-2-0+1"}},
			{Kind: "boot-entry", Args: Args{"layer": "Base-2-0+1"}},
			{Kind: "set-default", Args: Args{"layer": "Base-2-0+1", "previous": "Base-1-0+1"}},
		},
		AfterCommit: []Step{
			{Kind: "remove-base", Args: Args{"lv": "Base-0-9"}},
			{Kind: "write-report", Args: Args{"layer": "Base-2-0+1"}},
		},
	}
}

// finalState is the world after a whole update.
func finalState(t testing.TB) map[string]string {
	t.Helper()
	w := newWorld(t)
	j := w.journal()
	if err := j.Run(context.Background(), w.updateTx()); err != nil {
		t.Fatal(err)
	}
	st := w.state(t)
	// Guard against a fake whose steps do nothing.
	want := map[string]string{
		"lv/Base-2-0":          `-r--r--r-- "v2\netc=shipped2\n"`,
		"lv/Base-2-0+1":        `-rw-r--r-- "v2\netc=shipped2\nuuid=new\netc=admin\n"`,
		"boot/Base-2-0+1.conf": `-rw-r--r-- "Base-2-0+1\n"`,
		"default":              `-rw-r--r-- "Base-2-0+1\n"`,
		"report":               `-rw-r--r-- "updated to Base-2-0+1\n"`,
	}
	for k, v := range want {
		if st[k] != v {
			t.Fatalf("the full update gave %s = %s, want %s", k, orNone(st[k]), v)
		}
	}
	if _, ok := st["lv/Base-0-9"]; ok {
		t.Fatal("the full update kept Base-0-9")
	}
	return st
}

func (w world) journal() *Journal {
	return &Journal{Path: w.path("var/journal.json"), Kinds: w.kinds()}
}

func (w world) journalExists(t testing.TB) bool {
	t.Helper()
	_, err := os.Stat(w.path("var/journal.json"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}
