package main

import (
	"os"
	"path/filepath"
	"runtime"

	"github.com/imgbase/imgbase/internal/blobcache"
	"github.com/imgbase/imgbase/internal/host"
	"github.com/imgbase/imgbase/internal/imageref"
	"github.com/imgbase/imgbase/internal/registry"
	"github.com/imgbase/imgbase/internal/signature"
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
// blob cache, the trusted keys under /etc/imgbased/keys.
func (a *app) ociRequest(s *session, ref imageref.Ref, name string, size uint64, insecure bool) (host.OCIRequest, error) {
	root := s.host.Root
	log := s.host.Log
	keys, err := signature.LoadKeys(filepath.Join(root, "etc/imgbased/keys"))
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
	client := registry.New(registry.Options{
		AuthFiles: registry.AuthFiles(root, os.Getenv("HOME"), os.Getenv("XDG_RUNTIME_DIR")),
		Arch:      runtime.GOARCH,
		Logger:    log,
	})
	return host.OCIRequest{Ref: ref, NVR: name, Size: size, Registry: client, Cache: cache, Keys: keys,
		Insecure: insecure, Progress: a.progressFunc()}, nil
}
