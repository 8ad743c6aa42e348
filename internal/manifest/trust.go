package manifest

// A record carried by the tree it describes (an image's, or a base's) is
// only as good as the moment it was made: a tree changed after its
// manifest was recorded keeps a stale record. Reading every file to check
// the record would cost what the record is there to save, so a record is
// held to everything a walk sees without reading contents (paths, types,
// modes, owners, sizes, xattrs, link targets, device numbers, hard-link
// groups, and mtimes to the second, which an edit changes even when the
// size stays; not the root's) and trusted for the one thing it adds: each
// file's hash.

// HashesFrom returns walked, an unhashed manifest of a tree (a build with
// NoHash), with the hash of each regular file taken from rec, a record of
// the same tree, when rec describes everything the walk saw. Otherwise it
// returns nil and the differences of walked from rec: the record is stale
// or belongs to another tree. walked is not changed.
func HashesFrom(walked, rec *Manifest) (*Manifest, []Difference) {
	if rec.unhashed {
		return nil, []Difference{{Path: ".", Kind: Content, Want: "a record with hashes", Got: "none"}}
	}
	out := &Manifest{Entries: make([]Entry, len(walked.Entries))}
	copy(out.Entries, walked.Entries)
	r := rec.Entries
	j := 0
	for i := range out.Entries {
		e := &out.Entries[i]
		for j < len(r) && Less(r[j].Path, e.Path) {
			j++
		}
		if j < len(r) && r[j].Path == e.Path && e.Type == File && r[j].Type == File && r[j].Size == e.Size {
			e.SHA256 = r[j].SHA256
		}
	}
	var diff []Difference
	for _, d := range Compare(rec, out, CompareOptions{Seconds: true}) {
		// mkfs.ext4 -d stamps the root with the time it made lost+found.
		if d.Path == "." && d.Kind == TimeDiff {
			continue
		}
		diff = append(diff, d)
	}
	if len(diff) > 0 {
		return nil, diff
	}
	return out, nil
}
