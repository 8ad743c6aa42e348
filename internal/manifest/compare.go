package manifest

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"
)

// Kind says what differs about a path.
type Kind string

const (
	Missing  Kind = "missing"   // in want, not in got
	Extra    Kind = "extra"     // in got, not in want
	TypeDiff Kind = "type"      // a different file type; nothing else is compared
	ModeDiff Kind = "mode"      // permission bits
	Owner    Kind = "owner"     // uid or gid
	Content  Kind = "content"   // size or sha256
	Target   Kind = "target"    // symlink target
	Device   Kind = "device"    // device number
	XattrDif Kind = "xattr"     // one extended attribute added, removed or changed
	HardLink Kind = "hard-link" // a different hard-link group
	TimeDiff Kind = "mtime"     // only with CompareOptions.Times
)

// Difference is one way a path of got differs from want.
type Difference struct {
	Path string `json:"path"`
	Kind Kind   `json:"kind"`
	// Human-readable values, empty when not applicable.
	Want string `json:"want,omitempty"`
	Got  string `json:"have,omitempty"`
}

func (d Difference) String() string {
	if d.Want == "" && d.Got == "" {
		return fmt.Sprintf("%-9s %s", d.Kind, Escape(d.Path))
	}
	return fmt.Sprintf("%-9s %s: want %s, have %s", d.Kind, Escape(d.Path), d.Want, d.Got)
}

// CompareOptions widen the comparison. Times are left out by default: they
// say nothing about what the tree holds.
type CompareOptions struct {
	Times bool
	// Seconds compares mtimes to the second: what every way of copying a
	// tree into an image keeps (mkfs.ext4 -d drops the nanoseconds), and
	// what an edit of a file changes even when its size stays.
	Seconds bool
}

// LostFound is the directory mkfs.ext4 makes at the root of every
// filesystem. A manifest made of the tree an image was made from
// (mkfs.ext4 -d) does not hold it: a tree that has it where want does not
// is not different for that.
const LostFound = "lost+found"

func furniture(p string) bool { return p == LostFound || strings.HasPrefix(p, LostFound+"/") }

// Compare lists every difference of got from want, entry by entry, in
// manifest order, but for an extra LostFound. Both must be in manifest
// order, as Build and Decode give.
func Compare(want, got *Manifest, o CompareOptions) []Difference {
	var out []Difference
	w, g := want.Entries, got.Entries
	i, j := 0, 0
	for i < len(w) || j < len(g) {
		switch {
		case j == len(g) || (i < len(w) && Less(w[i].Path, g[j].Path)):
			out = append(out, Difference{Path: w[i].Path, Kind: Missing})
			i++
		case i == len(w) || Less(g[j].Path, w[i].Path):
			if !furniture(g[j].Path) {
				out = append(out, Difference{Path: g[j].Path, Kind: Extra})
			}
			j++
		default:
			out = compareEntry(out, &w[i], &g[j], o)
			i++
			j++
		}
	}
	return out
}

func compareEntry(out []Difference, w, g *Entry, o CompareOptions) []Difference {
	add := func(k Kind, want, got string) {
		out = append(out, Difference{Path: w.Path, Kind: k, Want: want, Got: got})
	}
	if w.Type != g.Type {
		add(TypeDiff, w.Type.String(), g.Type.String())
		return out
	}
	if w.Mode != g.Mode {
		add(ModeDiff, fmt.Sprintf("%04o", w.Mode), fmt.Sprintf("%04o", g.Mode))
	}
	if w.UID != g.UID || w.GID != g.GID {
		add(Owner, fmt.Sprintf("%d:%d", w.UID, w.GID), fmt.Sprintf("%d:%d", g.UID, g.GID))
	}
	if w.Size != g.Size || w.SHA256 != g.SHA256 {
		add(Content, fmt.Sprintf("%d bytes sha256 %s", w.Size, hex.EncodeToString(w.SHA256[:])),
			fmt.Sprintf("%d bytes sha256 %s", g.Size, hex.EncodeToString(g.SHA256[:])))
	}
	if w.Target != g.Target {
		add(Target, Escape(w.Target), Escape(g.Target))
	}
	if w.Rdev != g.Rdev {
		add(Device, rdevString(w.Rdev), rdevString(g.Rdev))
	}
	out = compareXattrs(out, w.Path, w.Xattrs, g.Xattrs)
	if w.Link != g.Link {
		add(HardLink, linkString(w.Link), linkString(g.Link))
	}
	if (o.Times && !SameTime(w, g)) || (o.Seconds && w.Sec != g.Sec) {
		add(TimeDiff, fmt.Sprintf("%d.%09d", w.Sec, w.Nsec), fmt.Sprintf("%d.%09d", g.Sec, g.Nsec))
	}
	return out
}

func linkString(l string) string {
	if l == "" {
		return "no earlier link"
	}
	return "link to " + Escape(l)
}

func compareXattrs(out []Difference, p string, w, g []Xattr) []Difference {
	i, j := 0, 0
	for i < len(w) || j < len(g) {
		switch {
		case j == len(g) || (i < len(w) && w[i].Name < g[j].Name):
			out = append(out, Difference{Path: p, Kind: XattrDif, Want: Escape(w[i].Name), Got: "none"})
			i++
		case i == len(w) || g[j].Name < w[i].Name:
			out = append(out, Difference{Path: p, Kind: XattrDif, Want: "no " + Escape(g[j].Name), Got: Escape(g[j].Name)})
			j++
		default:
			if !bytes.Equal(w[i].Value, g[j].Value) {
				out = append(out, Difference{Path: p, Kind: XattrDif, Want: Escape(w[i].Name) + "=" + b64(w[i].Value), Got: Escape(g[j].Name) + "=" + b64(g[j].Value)})
			}
			i++
			j++
		}
	}
	return out
}
