package volume

import (
	"path/filepath"
	"strings"

	"github.com/imgbase/imgbase/internal/nvr"
)

// LVName is the LV that holds the volume for path, named as oVirt Node
// names it: the path without its leading '/', each '-' doubled and each
// '/' turned into '_' (/var/log → var_log, /var/lib/x-y → var_lib_x--y).
// It fails for a path that cannot be a volume (see CheckPath).
func LVName(path string) (string, error) {
	if err := CheckPath(path); err != nil {
		return "", err
	}
	name := strings.ReplaceAll(strings.TrimPrefix(path, "/"), "-", "--")
	name = strings.ReplaceAll(name, "/", "_")
	if err := nvr.ValidLVName(name); err != nil {
		return "", refuse("cannot make a volume for %s: %v", path, err)
	}
	return name, nil
}

// PathOf is the directory a volume LV called name is mounted on: the
// inverse of LVName.
func PathOf(name string) string {
	return "/" + strings.ReplaceAll(strings.ReplaceAll(name, "_", "/"), "--", "-")
}

// osDirs belong to the OS image: every base brings its own, so sharing
// them between layers would mix files of different images. The
// pseudo-filesystems and /boot are mounted by the system itself.
var osDirs = []string{"/boot", "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
	"/proc", "/sys", "/dev", "/run"}

// CheckPath says why path cannot be a volume, as an *ErrRefused, or nil.
// It looks at the string only; Create also checks the directory.
func CheckPath(path string) error {
	switch {
	case !filepath.IsAbs(path):
		return refuse("cannot make a volume for %q: give an absolute path such as /var/log", path)
	case filepath.Clean(path) != path:
		return refuse("cannot make a volume for %q: write the path as %s", path, filepath.Clean(path))
	case path == "/":
		return refuse("cannot make a volume for /: the root is the layer itself")
	}
	for _, d := range osDirs {
		if path == d || strings.HasPrefix(path, d+"/") {
			return refuse("cannot make a volume for %s: %s belongs to the OS image (or is mounted by the system) and cannot be shared by every layer", path, d)
		}
	}
	for _, c := range path[1:] {
		// '_' stands for '/' in the LV name, so a path holding it could not
		// be read back from the name.
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '/' || c == '.' || c == '-' || c == '+') {
			return refuse("cannot make a volume for %s: character %q cannot be part of an LV name that maps back to the path (use a-z A-Z 0-9 . - +)", path, c)
		}
	}
	return nil
}

// under reports whether path lies strictly below dir.
func under(path, dir string) bool {
	return dir != path && strings.HasPrefix(path, strings.TrimSuffix(dir, "/")+"/")
}
