package config

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
)

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
	if want := []string{"images_to_keep = 2", "auto_reboot = no"}; !slices.Equal(keys, want) {
		t.Errorf("documented settings %q, want %q (every key imgbase reads, with its default)", keys, want)
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
