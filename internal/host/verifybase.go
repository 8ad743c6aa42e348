package host

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/imgbase/imgbase/internal/manifest"
)

// BaseVerification says how a base's tree compares with the manifest it
// recorded when it was installed.
type BaseVerification struct {
	Base string `json:"base"`
	// Manifest is false when the base recorded none (a full write does
	// not): there is nothing to verify against.
	Manifest    bool                  `json:"manifest"`
	Entries     int                   `json:"entries"`
	Differences []manifest.Difference `json:"differences"`
}

// VerifyBase checks the tree of base name against its recorded manifest,
// like 'rpm -Va': every difference is listed. The base is mounted
// read-only without journal replay, activated for the time of the check
// when it is inactive, as sealed bases are.
func (h *Host) VerifyBase(ctx context.Context, name string) (*BaseVerification, error) {
	t, err := h.Managed(ctx)
	if err != nil {
		return nil, err
	}
	b := t.Base(name)
	if b == nil {
		return nil, refuse("cannot verify base %q: no such base; see 'imgbase layout --bases'", name)
	}
	res := &BaseVerification{Base: name, Differences: []manifest.Difference{}}
	if h.Dry() {
		fmt.Fprintf(h.Out, "# verify base %s against its manifest\n", name)
		return res, nil
	}
	err = h.withBaseMounted(ctx, t.VG, b, func(mnt, fstype string) error {
		if fstype == "" {
			return refuse("cannot verify base %s: it holds no filesystem", name)
		}
		want, err := manifest.Load(filepath.Join(mnt, manifest.RecordPath))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("cannot verify base %s: %w", name, err)
		}
		res.Manifest, res.Entries = true, len(want.Entries)
		got, err := manifest.Build(ctx, mnt, manifest.BuildOptions{Exclude: excluded})
		if err != nil {
			return fmt.Errorf("cannot verify base %s: %w", name, err)
		}
		if d := manifest.Compare(want, got, manifest.CompareOptions{}); d != nil {
			res.Differences = d
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}
