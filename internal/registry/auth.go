package registry

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// AuthFiles lists the credential files imgbase reads, first match wins:
// its own, then the containers tools' (podman, skopeo, buildah), then
// docker's. root is "/" on a host ("" is read as "/"), a temporary
// directory in tests; home and xdgRuntimeDir are $HOME and
// $XDG_RUNTIME_DIR, either may be empty.
func AuthFiles(root, home, xdgRuntimeDir string) []string {
	if root == "" {
		root = "/"
	}
	var out []string
	add := func(p string) { out = append(out, filepath.Join(root, p)) }
	add("/etc/imgbased/auth.json")
	if xdgRuntimeDir != "" {
		add(filepath.Join(xdgRuntimeDir, "containers/auth.json"))
	}
	add("/run/containers/0/auth.json")
	if home != "" {
		add(filepath.Join(home, ".config/containers/auth.json"))
		add(filepath.Join(home, ".docker/config.json"))
	}
	return out
}

// Credentials found for a registry, and where.
type Credentials struct {
	Username, Password string
	File               string
}

type authFile struct {
	Auths map[string]struct {
		Auth          string `json:"auth"`
		Username      string `json:"username"`
		Password      string `json:"password"`
		IdentityToken string `json:"identitytoken"`
	} `json:"auths"`
}

// lookupAuth finds credentials for repo ("registry/path/name") in files.
// Keys may name a registry ("quay.io"), a namespace or repository
// ("quay.io/org", as containers-auth.json allows) or a URL
// ("https://index.docker.io/v1/", docker's spelling); the longest key
// matching the repository wins within a file. Missing files are skipped,
// unreadable or malformed ones are errors, not silently anonymous.
func lookupAuth(files []string, repo string) (*Credentials, error) {
	for _, f := range files {
		data, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("cannot read credentials: %w", err)
		}
		var af authFile
		if err := json.Unmarshal(data, &af); err != nil {
			return nil, fmt.Errorf("cannot read credentials from %s: %w", f, err)
		}
		best := ""
		for k := range af.Auths {
			if m := normalizeKey(k); matches(m, repo) && len(m) > len(normalizeKey(best)) {
				best = k
			}
		}
		if best == "" {
			continue
		}
		e := af.Auths[best]
		c := &Credentials{Username: e.Username, Password: e.Password, File: f}
		if e.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(e.Auth)
			u, p, ok := strings.Cut(string(raw), ":")
			if err != nil || !ok {
				return nil, fmt.Errorf("cannot read credentials from %s: the auth of %q is not base64 of user:password", f, best)
			}
			c.Username, c.Password = u, p
		}
		if e.IdentityToken != "" && c.Password == "" {
			c.Password = e.IdentityToken
		}
		return c, nil
	}
	return nil, nil
}

func normalizeKey(k string) string {
	k = strings.TrimPrefix(strings.TrimPrefix(k, "https://"), "http://")
	k = strings.TrimSuffix(k, "/")
	k = strings.TrimSuffix(k, "/v1")
	k = strings.TrimSuffix(k, "/v2")
	if k == "docker.io" || k == "registry-1.docker.io" {
		k = "index.docker.io"
	}
	return k
}

func matches(key, repo string) bool {
	return key != "" && (repo == key || strings.HasPrefix(repo, key+"/"))
}
