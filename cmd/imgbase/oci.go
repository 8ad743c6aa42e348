package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/imgbase/imgbase/internal/blobcache"
	"github.com/imgbase/imgbase/internal/host"
	"github.com/imgbase/imgbase/internal/imageref"
	"github.com/imgbase/imgbase/internal/keyring"
	"github.com/imgbase/imgbase/internal/registry"
)

// blobCacheMax caps the blob cache: a few images' worth of layers.
const blobCacheMax = 8 << 30

// ociImage parses an IMAGE argument; ok is false for an image file.
func ociImage(arg string) (imageref.Ref, bool, error) {
	ref, err := imageref.Parse(arg)
	if err != nil {
		return ref, false, usagef("%v", err)
	}
	return ref, ref.Transport != imageref.File, nil
}

// ociRequest sets up what a pull needs on this host: credentials, the
// blob cache, the trusted keys in keysDir ("" or the default: the host
// root's /etc/imgbased/keys).
func (a *app) ociRequest(s *session, ref imageref.Ref, name string, size uint64, keysDir string, insecure bool) (host.OCIRequest, error) {
	root := s.host.Root
	log := s.host.Log
	if keysDir == "" || keysDir == keyring.DefaultDir {
		keysDir = filepath.Join(root, keyring.DefaultDir)
	}
	keys, err := keyring.Load(keysDir)
	if err != nil {
		return host.OCIRequest{}, err
	}
	var cache *blobcache.Cache
	if !a.dry {
		if cache, err = blobcache.Open(filepath.Join(root, blobcache.DefaultDir), blobCacheMax, log); err != nil {
			log.Warn("pulling without the blob cache", "err", err)
			cache = nil
		}
	}
	insecureRegs, fstype := ociSettings(s.cfg.Get)
	if fstype != "" && fstype != "ext4" && fstype != "xfs" {
		return host.OCIRequest{}, errf("cannot use [update] base_fs = %q: use ext4 or xfs", fstype)
	}
	client := registry.New(registry.Options{
		AuthFiles: registry.AuthFiles(root, os.Getenv("HOME"), os.Getenv("XDG_RUNTIME_DIR")),
		Insecure:  insecureRegs,
		Arch:      runtime.GOARCH,
		Logger:    log,
	})
	return host.OCIRequest{Ref: ref, NVR: name, Size: size, FSType: fstype, Registry: client, Cache: cache, Keys: keys,
		Insecure: insecure, Progress: a.progressFunc()}, nil
}

// ociSettings reads "[update] insecure_registries" (registries, "host" or
// "host:port", separated by spaces or commas, that may be reached over
// plain HTTP) and "[update] base_fs" (ext4 or xfs for bases built from
// OCI images).
func ociSettings(get func(section, key string) (string, bool)) (insecure []string, fstype string) {
	v, _ := get("update", "insecure_registries")
	insecure = strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	fstype, _ = get("update", "base_fs")
	return insecure, strings.TrimSpace(fstype)
}
