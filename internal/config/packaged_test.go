package config

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// keysRead finds the [update] keys the code reads: c.Int/Get/String("update",
// "key", …) calls and their kin in cmd and internal.
func keysRead(t *testing.T) []string {
	t.Helper()
	call := regexp.MustCompile(`\("update", "([a-z_]+)"`)
	var keys []string
	for _, dir := range []string{"../../cmd", "../../internal"} {
		err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, m := range call.FindAllSubmatch(data, -1) {
				if k := string(m[1]); !slices.Contains(keys, k) {
					keys = append(keys, k)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(keys) == 0 {
		t.Fatal("found no [update] key read anywhere: the pattern is stale")
	}
	return keys
}

// The packaged /etc/imgbased.conf documents every key as a commented-out
// "#key = default" line. Uncommented, it must parse and give the defaults,
// and it must name exactly the keys imgbase reads.
func TestPackagedConfigDocumentsDefaults(t *testing.T) {
	data, err := os.ReadFile("../../packaging/imgbased.conf")
	if err != nil {
		t.Fatal(err)
	}
	setting := regexp.MustCompile(`(?m)^#([a-z_]+ = .*)$`)
	uncommented := setting.ReplaceAll(data, []byte("$1"))
	var keys []string
	for _, m := range setting.FindAllSubmatch(data, -1) {
		keys = append(keys, string(m[1]))
	}
	if want := []string{"images_to_keep = 2", "base_fs = ext4", "insecure_registries = ", "image = ", "base_size = ", "auto_reboot = no"}; !slices.Equal(keys, want) {
		t.Errorf("documented settings %q, want %q (every key imgbase reads, with its default)", keys, want)
	}
	// Every key the code reads is documented: a new one fails here until
	// the packaged file describes it.
	for _, k := range keysRead(t) {
		if !slices.ContainsFunc(keys, func(d string) bool { return strings.HasPrefix(d, k+" = ") }) {
			t.Errorf("imgbase reads [update] %s, which packaging/imgbased.conf does not document", k)
		}
	}

	path := filepath.Join(t.TempDir(), "imgbased.conf")
	if err := os.WriteFile(path, uncommented, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatalf("the packaged file, uncommented: %v", err)
	}
	if n, err := c.ImagesToKeep(); err != nil || n != DefaultImagesToKeep {
		t.Errorf("images_to_keep = %d, %v; want the default %d", n, err, DefaultImagesToKeep)
	}
	if _, set := c.Get("update", "images_to_keep"); !set {
		t.Error("images_to_keep is not in [update]")
	}
}
