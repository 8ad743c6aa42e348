package host

import (
	"context"
	"fmt"

	"github.com/imgbase/imgbase/internal/layout"
	"github.com/imgbase/imgbase/internal/thinls"
)

// BaseUsage is what a base maps in the pool. Exclusive bytes are mapped
// by no other thin volume (removing the base gives back at least those). A
// base with layers or delta-made successors shares most of its blocks
// with them, so its exclusive bytes are small even when it maps a whole
// image.
type BaseUsage struct {
	Base      string `json:"base"`
	Mapped    uint64 `json:"mapped"`
	Exclusive uint64 `json:"exclusive"`
	Shared    uint64 `json:"shared"`
}

// BaseUsage reads every base's usage from thin_ls on a metadata snapshot
// of the pool (see thinls.Read): three processes beyond the lvs report
// that made t. The error wraps thinls.ErrNotInstalled when thin_ls is
// missing.
func (h *Host) BaseUsage(ctx context.Context, t *layout.Tree) ([]BaseUsage, error) {
	if t.Pool == nil {
		return nil, fmt.Errorf("cannot tell what each base holds: %s has no pool tagged imgbased:pool", t.VG)
	}
	us, err := thinls.Read(ctx, h.Run, t.VG, t.Pool.Name)
	if err != nil {
		return nil, fmt.Errorf("cannot tell what each base holds exclusively: %w", err)
	}
	byDev := make(map[int64]thinls.Usage, len(us))
	for _, u := range us {
		byDev[u.Dev] = u
	}
	res := []BaseUsage{}
	for _, b := range t.Bases {
		if b.LV.ThinID < 0 {
			return nil, fmt.Errorf("cannot tell what base %s holds: lvs reports no thin_id for it", b.Name())
		}
		u, ok := byDev[b.LV.ThinID]
		if !ok {
			return nil, fmt.Errorf("cannot tell what base %s holds: thin_ls lists no device %d in pool %s/%s", b.Name(), b.LV.ThinID, t.VG, t.Pool.Name)
		}
		res = append(res, BaseUsage{Base: b.Name(), Mapped: u.Mapped, Exclusive: u.Exclusive, Shared: u.Shared})
	}
	return res, nil
}
