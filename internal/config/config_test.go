package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeRoot creates files (path relative to a new root → content).
func writeRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestLoadDefaultOrderAndOverride(t *testing.T) {
	root := writeRoot(t, map[string]string{
		"etc/imgbased.conf":                "[update]\nimages_to_keep = 5\n[other]\na = main\nb = main\n",
		"etc/imgbased.conf.d/20-b.conf":    "[other]\nb = twenty\n",
		"etc/imgbased.conf.d/10-a.conf":    "[update]\nimages_to_keep = 3\n[other]\nb = ten\n",
		"etc/imgbased.conf.d/30-c.conf~":   "[other]\nb = backup file, ignored\n",
		"etc/imgbased.conf.d/99-z.notconf": "[other]\nb = ignored\n",
	})
	c, err := LoadDefault(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		filepath.Join(root, "etc/imgbased.conf"),
		filepath.Join(root, "etc/imgbased.conf.d/10-a.conf"),
		filepath.Join(root, "etc/imgbased.conf.d/20-b.conf"),
	}
	if !slices.Equal(c.Files(), want) {
		t.Errorf("Files = %v, want %v", c.Files(), want)
	}
	if n, err := c.ImagesToKeep(); err != nil || n != 3 {
		t.Errorf("ImagesToKeep = %d, %v; want 3 from 10-a.conf", n, err)
	}
	for key, want := range map[string]string{"a": "main", "b": "twenty"} {
		if v, ok := c.Get("other", key); !ok || v != want {
			t.Errorf("Get(other, %s) = %q, %v; want %q", key, v, ok, want)
		}
	}
}

func TestLoadDefaultNothing(t *testing.T) {
	c, err := LoadDefault(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if n, err := c.ImagesToKeep(); err != nil || n != DefaultImagesToKeep {
		t.Errorf("ImagesToKeep = %d, %v; want the default %d", n, err, DefaultImagesToKeep)
	}
	if _, ok := c.Get("update", "images_to_keep"); ok {
		t.Error("Get found a key in an empty configuration")
	}
	if len(c.Files()) != 0 {
		t.Errorf("Files = %v", c.Files())
	}
}

func TestLoadDefaultOnlyDropIns(t *testing.T) {
	root := writeRoot(t, map[string]string{"etc/imgbased.conf.d/a.conf": "[update]\nimages_to_keep=4\n"})
	c, err := LoadDefault(root)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := c.ImagesToKeep(); n != 4 {
		t.Errorf("ImagesToKeep = %d, want 4", n)
	}
}

func TestSyntax(t *testing.T) {
	root := writeRoot(t, map[string]string{"c.conf": "\ufeff# comment\n; comment\n\n" +
		"[update]\r\n" +
		"  Images_To_Keep: 7   # why seven\n" +
		"[paths]   ; trailing comment\n" +
		"empty =\n" +
		"url = http://host/a#frag ; note\n" +
		"eq = a=b:c\n" +
		"[Mixed Case]\n" +
		"k = v\n"})
	c, err := Load(filepath.Join(root, "c.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []struct{ section, key, want string }{
		{"update", "images_to_keep", "7"},
		{"update", "IMAGES_TO_KEEP", "7"},
		{"paths", "empty", ""},
		{"paths", "url", "http://host/a#frag"},
		{"paths", "eq", "a=b:c"},
		{"Mixed Case", "k", "v"},
	} {
		if v, ok := c.Get(g.section, g.key); !ok || v != g.want {
			t.Errorf("Get(%q, %q) = %q, %v; want %q", g.section, g.key, v, ok, g.want)
		}
	}
	if _, ok := c.Get("mixed case", "k"); ok {
		t.Error("section names must be case-sensitive")
	}
}

func TestSyntaxErrors(t *testing.T) {
	for _, c := range []struct {
		content string
		line    int
		msg     string
	}{
		{"images_to_keep = 2\n", 1, `key "images_to_keep" is outside any [section]`},
		{"[update]\n\nimages_to_keep\n", 3, `expected "key = value" or "[section]", got "images_to_keep"`},
		{"# x\n[update\n", 2, "has no closing ']'"},
		{"[]\n", 1, "empty section name"},
		{"[a] b\n", 1, `unexpected "b" after section header`},
		{"[a]\n= 1\n", 2, "missing key"},
		{"[a]\nk = 1\nK = 2\n", 3, `key "k" appears twice in [a]`},
		{"[a]\n[b]\n[a]\n", 3, "section [a] appears twice"},
	} {
		root := writeRoot(t, map[string]string{"bad.conf": c.content})
		file := filepath.Join(root, "bad.conf")
		_, err := Load(file)
		var ce *Error
		if !errors.As(err, &ce) {
			t.Errorf("%q: error %v is not a *config.Error", c.content, err)
			continue
		}
		if ce.File != file || ce.Line != c.line || !strings.Contains(ce.Msg, c.msg) {
			t.Errorf("%q: got %s:%d %q; want line %d, %q", c.content, ce.File, ce.Line, ce.Msg, c.line, c.msg)
		}
		if !strings.HasPrefix(err.Error(), "cannot use "+file+" line ") {
			t.Errorf("message %q does not name the file and line", err)
		}
	}
}

func TestRepeatsAcrossFilesOverride(t *testing.T) {
	root := writeRoot(t, map[string]string{
		"a.conf": "[a]\nk = 1\n",
		"b.conf": "[a]\nk = 2\n",
	})
	c, err := Load(filepath.Join(root, "a.conf"), filepath.Join(root, "b.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := c.Get("a", "k"); v != "2" {
		t.Errorf("k = %q, want the later file's 2", v)
	}
}

func TestImagesToKeepBadValue(t *testing.T) {
	for _, v := range []string{"two", "0", "-1", "2.5", ""} {
		root := writeRoot(t, map[string]string{
			"etc/imgbased.conf":          "[update]\nimages_to_keep = 3\n",
			"etc/imgbased.conf.d/x.conf": "# set by admin\n[update]\nimages_to_keep = " + v + "\n",
		})
		c, err := LoadDefault(root)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.ImagesToKeep()
		var ce *Error
		if !errors.As(err, &ce) || ce.File != filepath.Join(root, "etc/imgbased.conf.d/x.conf") || ce.Line != 3 {
			t.Errorf("images_to_keep = %q: error %v, want it at x.conf line 3", v, err)
			continue
		}
		if !strings.Contains(err.Error(), "want a whole number of at least 1") {
			t.Errorf("images_to_keep = %q: %v", v, err)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.conf"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "cannot read configuration: ") {
		t.Errorf("Load(missing) = %v", err)
	}
}

func TestUnreadableDropInDir(t *testing.T) {
	root := writeRoot(t, map[string]string{"etc/imgbased.conf.d": "a file where a directory belongs"})
	if _, err := LoadDefault(root); err == nil || !strings.Contains(err.Error(), "imgbased.conf.d") {
		t.Errorf("LoadDefault = %v, want an error naming imgbased.conf.d", err)
	}
}
