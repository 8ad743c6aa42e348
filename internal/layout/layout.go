// Package layout is imgbase's model of a host: the tree of bases and their
// layers in one volume group, built from a single lvs report.
//
// Vocabulary: the managed volume group carries the tag imgbased:vg and holds
// one thin pool (imgbased:pool). A base (imgbased:base) is a read-only thin
// LV named by an NVR, filled once from an OS image and never booted. A layer
// (imgbased:layer) is a writable thin snapshot named <base>+<N>, taken of its
// base or of another layer of the same base; layers are what boot. Volumes
// (imgbased:volume) are thin LVs shared by every layer (/var, /home…). The
// LV that held / before `layout --init` keeps the tag imgbased:init.
package layout

import (
	"errors"
	"fmt"
	"sort"

	"github.com/imgbase/imgbase/internal/lvm"
	"github.com/imgbase/imgbase/internal/nvr"
)

// ErrNotInitialized means no volume group carries the imgbased:vg tag.
var ErrNotInitialized = errors.New("this host has no imgbase layout; run 'imgbase layout --init' first")

// Tree is the layout of the managed volume group.
type Tree struct {
	VG      string
	Pool    *lvm.LV
	Init    *lvm.LV
	Bases   []*Base // oldest first
	Volumes []*lvm.LV
	// Orphans are layers whose base is gone.
	Orphans []*Layer
	// All holds every LV of every VG in the report.
	All []lvm.LV
}

// Base is a read-only base and its layers.
type Base struct {
	LV     *lvm.LV
	NVR    nvr.NVR
	Layers []*Layer // lowest N first
}

// Layer is a writable snapshot of a base.
type Layer struct {
	LV   *lvm.LV
	Base *Base
	N    int
}

// Name is the base's LV name.
func (b *Base) Name() string { return b.LV.Name }

// Name is the layer's LV name.
func (l *Layer) Name() string { return l.LV.Name }

// Latest returns the base's newest layer, or nil.
func (b *Base) Latest() *Layer {
	if len(b.Layers) == 0 {
		return nil
	}
	return b.Layers[len(b.Layers)-1]
}

// NextLayerName is the name a new layer of b gets.
func (b *Base) NextLayerName() string {
	n := 1
	if l := b.Latest(); l != nil {
		n = l.N + 1
	}
	return nvr.LayerName(b.NVR, n)
}

// Build makes the tree from an lvs report. A host without a volume group
// tagged imgbased:vg yields a Tree with an empty VG.
func Build(lvs []lvm.LV) (*Tree, error) {
	t := &Tree{All: lvs}
	for i := range lvs {
		lv := &lvs[i]
		if !lv.VGHasTag(lvm.TagVG) {
			continue
		}
		if t.VG == "" {
			t.VG = lv.VG
		} else if t.VG != lv.VG {
			return nil, fmt.Errorf("cannot read the layout: volume groups %s and %s both carry the tag %s; remove it from one with 'vgchange --deltag %s VG'", t.VG, lv.VG, lvm.TagVG, lvm.TagVG)
		}
	}
	if t.VG == "" {
		return t, nil
	}
	bases := map[string]*Base{}
	var layers []*lvm.LV
	for i := range lvs {
		lv := &lvs[i]
		if lv.VG != t.VG {
			continue
		}
		switch {
		case lv.HasTag(lvm.TagPool) && lv.IsThinPool():
			t.Pool = lv
		case lv.HasTag(lvm.TagInit):
			t.Init = lv
		case lv.HasTag(lvm.TagBase):
			n, err := nvr.Parse(lv.Name)
			if err != nil {
				continue // tagged by hand with a name that is no NVR: not ours to manage
			}
			b := &Base{LV: lv, NVR: n}
			bases[lv.Name] = b
			t.Bases = append(t.Bases, b)
		case lv.HasTag(lvm.TagLayer):
			layers = append(layers, lv)
		case lv.HasTag(lvm.TagVolume):
			t.Volumes = append(t.Volumes, lv)
		}
	}
	for _, lv := range layers {
		b, n, err := nvr.ParseLayer(lv.Name)
		if err != nil {
			continue
		}
		l := &Layer{LV: lv, N: n}
		if base := bases[b.String()]; base != nil {
			l.Base = base
			base.Layers = append(base.Layers, l)
		} else {
			t.Orphans = append(t.Orphans, l)
		}
	}
	sort.SliceStable(t.Bases, func(i, j int) bool { return nvr.Compare(t.Bases[i].NVR, t.Bases[j].NVR) < 0 })
	for _, b := range t.Bases {
		sort.Slice(b.Layers, func(i, j int) bool { return b.Layers[i].N < b.Layers[j].N })
	}
	return t, nil
}

// Initialized reports whether the host has a managed volume group.
func (t *Tree) Initialized() bool { return t.VG != "" }

// LatestBase returns the newest base, or nil.
func (t *Tree) LatestBase() *Base {
	if len(t.Bases) == 0 {
		return nil
	}
	return t.Bases[len(t.Bases)-1]
}

// LatestLayer returns the newest layer of the newest base that has one.
func (t *Tree) LatestLayer() *Layer {
	for i := len(t.Bases) - 1; i >= 0; i-- {
		if l := t.Bases[i].Latest(); l != nil {
			return l
		}
	}
	return nil
}

// Layers returns every layer, oldest base first.
func (t *Tree) Layers() []*Layer {
	var out []*Layer
	for _, b := range t.Bases {
		out = append(out, b.Layers...)
	}
	return out
}

// Base returns the base called name, or nil.
func (t *Tree) Base(name string) *Base {
	for _, b := range t.Bases {
		if b.Name() == name {
			return b
		}
	}
	return nil
}

// Layer returns the layer called name, or nil.
func (t *Tree) Layer(name string) *Layer {
	for _, b := range t.Bases {
		for _, l := range b.Layers {
			if l.Name() == name {
				return l
			}
		}
	}
	return nil
}

// LV returns the LV called name in the managed VG, or nil.
func (t *Tree) LV(name string) *lvm.LV {
	for i := range t.All {
		if t.All[i].VG == t.VG && t.All[i].Name == name {
			return &t.All[i]
		}
	}
	return nil
}

// ByDevice returns the active LV with the given kernel device number, in
// any VG, or nil.
func (t *Tree) ByDevice(major, minor int) *lvm.LV {
	for i := range t.All {
		lv := &t.All[i]
		if lv.Major == major && lv.Minor == minor && lv.Major >= 0 {
			return lv
		}
	}
	return nil
}

// Current returns the layer that holds the running root, given the device
// number of /, or nil when / is not a layer.
func (t *Tree) Current(major, minor int) *Layer {
	lv := t.ByDevice(major, minor)
	if lv == nil || lv.VG != t.VG {
		return nil
	}
	return t.Layer(lv.Name)
}
