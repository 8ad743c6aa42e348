package main

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/imgbase/imgbase/internal/config"
	"github.com/imgbase/imgbase/internal/lock"
)

// loadConfig reads --config and the *.conf files of its .d directory, so
// that a broken file is reported before anything runs. Missing files are
// an empty configuration.
func (a *app) loadConfig() (*config.Config, error) {
	var paths []string
	if _, err := os.Stat(a.configPath); err == nil {
		paths = append(paths, a.configPath)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	dropins, err := filepath.Glob(filepath.Join(a.configPath+".d", "*.conf"))
	if err != nil {
		return nil, err
	}
	paths = append(paths, dropins...) // Glob sorts
	cfg, err := config.Load(paths...)
	if err != nil {
		return nil, err
	}
	if _, err := cfg.ImagesToKeep(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// lock takes the lock every changing command holds; a second imgbase waits
// up to --lock-timeout and then fails naming the holder.
func (a *app) lock(ctx context.Context) (func(), error) {
	wait, err := a.lockWait()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(a.lockPath), 0o755); err != nil {
		return nil, err
	}
	holder := "imgbase " + strings.Join(os.Args[1:], " ")
	l, err := lock.Acquire(ctx, a.lockPath, lock.Holder([]string{holder}), wait)
	if err != nil {
		return nil, err
	}
	return func() { l.Release() }, nil
}
