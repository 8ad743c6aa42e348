package layout

import (
	"fmt"
	"strings"

	"github.com/imgbase/imgbase/internal/origin"
)

// Text renders the tree the way `imgbase layout` prints it: each base, its
// layers indented under it; current names the running layer ("" for none).
func (t *Tree) Text(current string) string {
	var b strings.Builder
	for _, base := range t.Bases {
		b.WriteString(base.Name())
		b.WriteByte('\n')
		for _, l := range base.Layers {
			fmt.Fprintf(&b, " +- %s", l.Name())
			if l.Name() == current {
				b.WriteString(" (current)")
			}
			b.WriteByte('\n')
		}
	}
	for _, l := range t.Orphans {
		fmt.Fprintf(&b, "?? %s (its base is missing)\n", l.Name())
	}
	return b.String()
}

// JSONTree is the --json form of the layout.
type JSONTree struct {
	VG      string     `json:"vg"`
	Pool    string     `json:"pool"`
	Bases   []JSONBase `json:"bases"`
	Volumes []string   `json:"volumes"`
	Current string     `json:"current,omitempty"`
}

// JSONBase is one base in the --json form.
type JSONBase struct {
	Name     string      `json:"name"`
	Size     uint64      `json:"size"`
	ReadOnly bool        `json:"read_only"`
	Layers   []JSONLayer `json:"layers"`
	// Source is the image the base was built from, for bases built from
	// an OCI image.
	Source *origin.Origin `json:"source,omitempty"`
}

// JSONLayer is one layer in the --json form.
type JSONLayer struct {
	Name    string `json:"name"`
	Origin  string `json:"origin"`
	Size    uint64 `json:"size"`
	Active  bool   `json:"active"`
	Current bool   `json:"current"`
}

// JSON returns the tree in its --json form.
func (t *Tree) JSON(current string) JSONTree {
	out := JSONTree{VG: t.VG, Bases: []JSONBase{}, Volumes: []string{}, Current: current}
	if t.Pool != nil {
		out.Pool = t.Pool.Name
	}
	for _, b := range t.Bases {
		jb := JSONBase{Name: b.Name(), Size: b.LV.Size, ReadOnly: b.LV.ReadOnly(), Layers: []JSONLayer{}}
		if o, ok := origin.FromTags(b.LV.Tags); ok {
			jb.Source = &o
		}
		for _, l := range b.Layers {
			jb.Layers = append(jb.Layers, JSONLayer{
				Name: l.Name(), Origin: l.LV.Origin, Size: l.LV.Size,
				Active: l.LV.Active(), Current: l.Name() == current,
			})
		}
		out.Bases = append(out.Bases, jb)
	}
	for _, v := range t.Volumes {
		out.Volumes = append(out.Volumes, v.Name)
	}
	return out
}

// Unit is a size unit of --units.
type Unit struct {
	Suffix string
	Bytes  uint64
}

// ParseUnit reads b, k, m or g (case-insensitive).
func ParseUnit(s string) (Unit, error) {
	switch strings.ToLower(s) {
	case "b", "":
		return Unit{"B", 1}, nil
	case "k":
		return Unit{"K", 1 << 10}, nil
	case "m":
		return Unit{"M", 1 << 20}, nil
	case "g":
		return Unit{"G", 1 << 30}, nil
	}
	return Unit{}, fmt.Errorf("unknown unit %q: use b, k, m or g", s)
}

// Format prints n bytes in the unit, rounded down.
func (u Unit) Format(n uint64) string {
	if u.Bytes == 1 {
		return fmt.Sprintf("%d", n)
	}
	return fmt.Sprintf("%d%s", n/u.Bytes, u.Suffix)
}
