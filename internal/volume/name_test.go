package volume

import (
	"errors"
	"strings"
	"testing"
)

func TestLVNameRoundTrip(t *testing.T) {
	for path, want := range map[string]string{
		"/var":             "var",
		"/var/log":         "var_log",
		"/var/log/audit":   "var_log_audit",
		"/var/crash":       "var_crash",
		"/home":            "home",
		"/var/lib/x-y":     "var_lib_x--y",
		"/srv/a--b/c":      "srv_a----b_c",
		"/opt/app.d/v1+2":  "opt_app.d_v1+2",
		"/var/lib/libvirt": "var_lib_libvirt",
	} {
		got, err := LVName(path)
		if err != nil || got != want {
			t.Errorf("LVName(%s) = %q, %v; want %q", path, got, err, want)
			continue
		}
		if back := PathOf(got); back != path {
			t.Errorf("PathOf(%s) = %s; want %s", got, back, path)
		}
	}
}

func TestLVNameRefusals(t *testing.T) {
	for path, msg := range map[string]string{
		"":                             "absolute path",
		"var":                          "absolute path",
		"/var/../etc":                  "write the path as /etc",
		"//var":                        "write the path as /var",
		"/":                            "the root is the layer",
		"/boot":                        "belongs to the OS image",
		"/boot/efi":                    "belongs to the OS image",
		"/etc":                         "belongs to the OS image",
		"/usr/local":                   "belongs to the OS image",
		"/proc/x":                      "belongs to the OS image",
		"/run/media":                   "belongs to the OS image",
		"/var/lib/a_b":                 `character '_'`,
		"/var/lib/a b":                 `character ' '`,
		"/var/lib/été":                 `character 'é'`,
		"/-x":                          "starts with '-'",
		"/snapshots":                   "lvm2 reserves",
		"/var/tdata":                   "lvm2 reserves",
		"/" + strings.Repeat("a", 130): "too long",
	} {
		_, err := LVName(path)
		var r *ErrRefused
		if !errors.As(err, &r) || !strings.Contains(err.Error(), msg) {
			t.Errorf("LVName(%q): %v; want a refusal with %q", path, err, msg)
		}
	}
	// /bootstrap is no part of /boot.
	if _, err := LVName("/bootstrap"); err != nil {
		t.Errorf("LVName(/bootstrap): %v", err)
	}
}

func TestDefaultsAreValidAndParentsFirst(t *testing.T) {
	seen := map[string]bool{}
	for _, o := range Defaults() {
		if _, err := LVName(o.Path); err != nil {
			t.Errorf("%s: %v", o.Path, err)
		}
		for p := o.Path; p != "/"; p = parentOf(p) {
			if p != o.Path && isDefault(p) && !seen[p] {
				t.Errorf("%s comes before its parent %s", o.Path, p)
			}
		}
		seen[o.Path] = true
	}
	for _, want := range []string{"/var", "/var/log", "/var/log/audit", "/var/tmp", "/home", "/var/crash"} {
		if !seen[want] {
			t.Errorf("defaults lack %s", want)
		}
	}
}

func parentOf(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i == 0 {
		return "/"
	}
	return p[:i]
}

func isDefault(p string) bool {
	for _, o := range Defaults() {
		if o.Path == p {
			return true
		}
	}
	return false
}
