package host

import (
	"context"
	"slices"

	"github.com/imgbase/imgbase/internal/hooks"
	"github.com/imgbase/imgbase/internal/layout"
	"github.com/imgbase/imgbase/internal/lvm"
	"github.com/imgbase/imgbase/internal/nvr"
	"github.com/imgbase/imgbase/internal/undo"
)

// checkNewBase validates a new base's name against lvm2's rules and the layout.
func checkNewBase(t *layout.Tree, name string) error {
	n, err := nvr.Parse(name)
	if err != nil {
		return refuse("cannot add base %q: %v; a base is named NAME-VERSION-RELEASE, e.g. Base-2-0", name, err)
	}
	if err := nvr.ValidBaseName(n.String()); err != nil {
		return refuse("cannot add base %q: %v", name, err)
	}
	if t.LV(name) != nil {
		return refuse("cannot add base %s: an LV of that name exists in %s; pick another NVR", name, t.VG)
	}
	return nil
}

// AddEmptyBase creates an empty base of size bytes: a thin LV to be filled
// later, sealed (read-only, activation skip, inactive) like every base.
func (h *Host) AddEmptyBase(ctx context.Context, name string, size uint64) error {
	t, err := h.Creating(ctx)
	if err != nil {
		return err
	}
	if err := checkNewBase(t, name); err != nil {
		return err
	}
	if size == 0 {
		return refuse("cannot add base %s: --size is required, e.g. --size 10G", name)
	}
	u := &undo.Stack{Log: h.Log}
	if err := h.LVM().CreateThin(ctx, t.VG, t.Pool.Name, name, size, []string{lvm.TagBase}); err != nil {
		return err
	}
	u.Push("create "+name, func(ctx context.Context) error { return h.LVM().Remove(ctx, t.VG, name) })
	if err := h.LVM().Seal(ctx, t.VG, name); err != nil {
		return u.Rollback(ctx, err)
	}
	return nil
}

// RemoveBase removes a base with all its layers and their boot entries; the
// base of the running layer is refused. The removal is journaled: once its
// checks pass it is finished even across a crash ('imgbase recover').
func (h *Host) RemoveBase(ctx context.Context, name string) error {
	return h.removeBase(ctx, nil, name, func(vg string, layers, lvs []string) error {
		return h.journal().Run(ctx, h.removalTx("remove base "+name, vg, layers, lvs))
	})
}

// collectBase removes an old base for the garbage collection of an update
// (a step after that update's commit, so not a journal of its own), entries
// first like RemoveBase. t is the layout to check the removal against; nil
// reads it.
func (h *Host) collectBase(ctx context.Context, t *layout.Tree, name string) error {
	return h.removeBase(ctx, t, name, func(vg string, layers, lvs []string) error {
		if err := h.removeEntries(ctx, layers); err != nil {
			return err
		}
		return h.LVM().Remove(ctx, vg, lvs...)
	})
}

// removeBase checks the removal of base name, runs the admin's hooks
// around remove, which is given the base's layers and every LV to go
// (the layers, then the base). t is the layout; nil reads it.
func (h *Host) removeBase(ctx context.Context, t *layout.Tree, name string, remove func(vg string, layers, lvs []string) error) error {
	t, b, layers, err := h.checkRemoveBase(ctx, t, name)
	if err != nil {
		return err
	}
	if err := h.preHook(ctx, hooks.BaseRemove, name); err != nil {
		return err
	}
	if err := remove(t.VG, layers, append(slices.Clone(layers), b.Name())); err != nil {
		return err
	}
	h.postHook(ctx, hooks.BaseRemove, name)
	return nil
}

// checkRemoveBase refuses what base --remove must not do and returns the
// layout (t, or read when nil), the base and the names of its layers.
func (h *Host) checkRemoveBase(ctx context.Context, t *layout.Tree, name string) (*layout.Tree, *layout.Base, []string, error) {
	if t == nil {
		var err error
		if t, err = h.Managed(ctx); err != nil {
			return nil, nil, nil, err
		}
	}
	if err := h.bootReady(); err != nil {
		return nil, nil, nil, err
	}
	b := t.Base(name)
	if b == nil {
		return nil, nil, nil, refuse("cannot remove base %q: no such base; see 'imgbase layout --bases'", name)
	}
	if cur := h.CurrentLayer(t); cur != nil && cur.Base == b {
		return nil, nil, nil, refuse("cannot remove base %s: the running layer %s is on it; boot a layer of another base first", name, cur.Name())
	}
	for _, l := range b.Layers {
		if l.LV.Active() && h.isMounted(l.LV) {
			return nil, nil, nil, refuse("cannot remove base %s: its layer %s is mounted; unmount it first", name, l.Name())
		}
	}
	names := make([]string, 0, len(b.Layers)+1)
	for _, l := range b.Layers {
		names = append(names, l.Name())
	}
	if err := h.refuseDefault(names...); err != nil {
		return nil, nil, nil, err
	}
	return t, b, names, nil
}

// Pin exempts a base from garbage collection (pin true) or makes it
// collectable again.
func (h *Host) Pin(ctx context.Context, name string, pin bool) error {
	t, err := h.Managed(ctx)
	if err != nil {
		return err
	}
	b := t.Base(name)
	if b == nil {
		return refuse("cannot pin %q: no such base; see 'imgbase layout --bases'", name)
	}
	if b.LV.HasTag(lvm.TagPinned) == pin {
		return nil
	}
	if pin {
		return h.LVM().AddLVTag(ctx, t.VG, name, lvm.TagPinned)
	}
	return h.LVM().DelLVTag(ctx, t.VG, name, lvm.TagPinned)
}
