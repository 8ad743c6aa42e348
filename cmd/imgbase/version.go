package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// version and commit are set at build time (-ldflags "-X main.version=…
// -X main.commit=…"); see the Makefile.
var (
	version = "dev"
	commit  = ""
)

// buildInfo is what --version reports.
type buildInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Go      string `json:"go"`
}

// currentBuild reports the linker's values, else what the Go toolchain
// recorded: a `go install …@v1.2.3` build has the module version, a build
// in a git checkout has the revision, so neither reports "dev" falsely.
func currentBuild() buildInfo {
	b := buildInfo{Version: version, Commit: commit, Go: runtime.Version()}
	if info, ok := debug.ReadBuildInfo(); ok {
		if b.Version == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			b.Version = info.Main.Version
		}
		if b.Commit == "" {
			b.Commit = vcsRevision(info.Settings)
		}
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	b.Version = strings.TrimPrefix(b.Version, "v")
	return b
}

func vcsRevision(settings []debug.BuildSetting) string {
	rev, dirty := "", false
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" && dirty {
		rev += "-dirty"
	}
	return rev
}

func (b buildInfo) String() string {
	return fmt.Sprintf("imgbase %s (commit %s, %s)", b.Version, b.Commit, b.Go)
}

func (a *app) printVersion() error {
	b := currentBuild()
	if a.json {
		return a.printJSON(b)
	}
	_, err := fmt.Fprintln(a.stdout, b)
	return err
}
