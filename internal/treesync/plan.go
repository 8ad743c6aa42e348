// Package treesync makes a destination tree identical to a source tree,
// writing only what differs: a new base that starts as a thin snapshot of its
// predecessor keeps every block of the entries it leaves alone shared with
// the predecessor. What differs is decided from the two trees' manifests
// (content hashes, never sizes and mtimes).
package treesync

import (
	"strings"

	"github.com/imgbase/imgbase/internal/manifest"
)

// action is what the sync does with one path of the source.
type action uint8

const (
	keep   action = iota + 1 // nothing to write
	meta                     // same inode and content; owner, mode, xattrs or mtime set in place
	write                    // a new inode from the source, renamed over whatever was there
	link                     // a hard link to the group head's inode, renamed over whatever was there
	mkdir                    // a new directory
	member                   // kept inode of a hard-link group whose head is meta: counted as meta
)

// plan is what a sync will do, decided from the manifests alone.
type plan struct {
	src, dst *manifest.Manifest
	dstIdx   map[string]*manifest.Entry
	srcIdx   map[string]*manifest.Entry
	actions  []action            // one per source entry
	removed  int                 // destination entries not in the source
	prune    map[string][]string // kept directory → names to remove from it first (gone or of another type)
	// still marks each kept directory in which nothing below changes: the
	// sync neither enters it nor touches its metadata. On a snapshot, whose
	// page cache is cold, opening every directory of an unchanged tree
	// costs seconds under emulation.
	still  []bool
	writes int64 // file bytes to write
	full   int64 // file bytes of a full copy of the source
}

// group names the inode of a destination entry: its hard-link group's head
// or, for an entry not in a group, its own path.
func group(e *manifest.Entry) string {
	if e.Link != "" {
		return e.Link
	}
	return e.Path
}

// makePlan decides, for each source entry in manifest order, whether the
// destination's entry can stay. An inode of the destination is reused by at
// most one source hard-link group (or single entry): the first, in manifest
// order, whose head has the same type and content there. Every other path is
// replaced by a new inode or a link, so groups split and join exactly as in
// the source, and changing an inode in place never changes a path the source
// wants different.
func makePlan(src, dst *manifest.Manifest) *plan {
	p := &plan{src: src, dst: dst, srcIdx: src.Index(), dstIdx: dst.Index(), actions: make([]action, len(src.Entries))}
	claimed := map[string]bool{}  // destination inodes (by group) already reused
	reused := map[string]string{} // source head → destination inode it reuses
	pos := map[string]int{}       // source head → its index
	for i := range src.Entries {
		s := &src.Entries[i]
		d := p.dstIdx[s.Path]
		if d != nil && d.Type != s.Type {
			d = nil // removed first, then created anew
		}
		switch {
		case s.Type == manifest.Dir:
			p.actions[i] = mkdir
			if d != nil {
				p.actions[i] = metaOrKeep(s, d)
			}
		case s.Link == "":
			if d != nil && manifest.SameContent(s, d) && !claimed[group(d)] {
				claimed[group(d)] = true
				reused[s.Path] = group(d)
				pos[s.Path] = i
				p.actions[i] = metaOrKeep(s, d)
				break
			}
			p.actions[i] = write
			if s.Type == manifest.File {
				p.writes += s.Size
			}
		default:
			if g, ok := reused[s.Link]; ok && d != nil && group(d) == g {
				p.actions[i] = keep
				if p.actions[pos[s.Link]] == meta {
					p.actions[i] = member
				}
				break
			}
			p.actions[i] = link
		}
		if s.Type == manifest.File && s.Link == "" {
			p.full += s.Size
		}
	}
	p.prune = map[string][]string{}
	for i := range dst.Entries {
		d := &dst.Entries[i]
		s := p.srcIdx[d.Path]
		if s == nil {
			p.removed++
		}
		if d.Path == "." || (s != nil && s.Type == d.Type) {
			continue
		}
		// Only the topmost: removing a directory removes what it holds.
		parent := manifest.Parent(d.Path)
		if ps, pd := p.srcIdx[parent], p.dstIdx[parent]; ps != nil && ps.Type == manifest.Dir && pd.Type == manifest.Dir {
			p.prune[parent] = append(p.prune[parent], d.Path[strings.LastIndexByte(d.Path, '/')+1:])
		}
	}
	p.markStill()
	return p
}

// markStill sets p.still. Entries are in manifest order, a directory's
// subtree right after it: going backwards, every entry is seen before the
// directory holding it.
func (p *plan) markStill() {
	n := len(p.src.Entries)
	p.still = make([]bool, n)
	dirs := map[string]int{}
	for i := range p.src.Entries {
		if e := &p.src.Entries[i]; e.Type == manifest.Dir {
			dirs[e.Path] = i
			p.still[i] = p.actions[i] == keep && len(p.prune[e.Path]) == 0
		}
	}
	if n > 0 {
		p.still[0] = false // the root is the sync's own
	}
	for i := n - 1; i > 0; i-- {
		e := &p.src.Entries[i]
		quiet := p.actions[i] == keep || p.actions[i] == member
		if e.Type == manifest.Dir {
			quiet = p.still[i]
		}
		if !quiet {
			p.still[dirs[manifest.Parent(e.Path)]] = false
		}
	}
}

func metaOrKeep(s, d *manifest.Entry) action {
	if manifest.SameMeta(s, d) && manifest.SameTime(s, d) {
		return keep
	}
	return meta
}

// Report says what a sync did.
type Report struct {
	Unchanged    int   `json:"unchanged"`     // entries left alone
	Rewritten    int   `json:"rewritten"`     // entries of both trees replaced: new content, a type change, a hard-link group change
	MetadataOnly int   `json:"metadata_only"` // entries whose owner, mode, xattrs or mtime were set in place
	Added        int   `json:"added"`         // entries only in the source
	Removed      int   `json:"removed"`       // entries only in the destination
	BytesWritten int64 `json:"bytes_written"` // file data written
}

func (p *plan) report() Report {
	r := Report{Removed: p.removed}
	for i, a := range p.actions {
		switch a {
		case keep:
			r.Unchanged++
		case meta, member:
			r.MetadataOnly++
		default:
			if p.dstIdx[p.src.Entries[i].Path] == nil {
				r.Added++
			} else {
				r.Rewritten++
			}
		}
	}
	return r
}

// Estimate is what a sync would do, from the manifests alone.
type Estimate struct {
	Report          // BytesWritten is the file bytes the sync would write
	FullBytes int64 `json:"full_bytes"` // file bytes a full copy of the source writes
}

// Delta reports whether syncing writes less file data than a full copy.
func (e Estimate) Delta() bool { return e.BytesWritten < e.FullBytes }

// EstimateSync says what Sync would do to make a tree described by dst equal
// to one described by src. Bytes are logical file sizes: holes count, in the
// delta and the full copy alike, so the two compare fairly.
func EstimateSync(src, dst *manifest.Manifest) Estimate {
	p := makePlan(src, dst)
	r := p.report()
	r.BytesWritten = p.writes
	return Estimate{Report: r, FullBytes: p.full}
}
