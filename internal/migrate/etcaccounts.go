package migrate

import (
	"bytes"
	"sort"
)

// accounts merges /etc/passwd, group, shadow and gshadow by entry name and
// returns the names it handled; anything else about them (a symlink, a
// directory, missing from either layer) is left to the ordinary rules.
func (m *merger) accounts(ofd, rfd, nfd int) ([]string, error) {
	var done []string
	for _, f := range accountFormats {
		rel := "etc/" + f.file
		o, r, n, err := m.stat3(ofd, rfd, nfd, f.file, rel)
		if err != nil {
			return nil, err
		}
		if r == nil || n == nil || r.kind != kindFile || n.kind != kindFile || (o != nil && o.kind != kindFile) {
			continue
		}
		done = append(done, f.file)
		same, err := sameNode(o, r, m.snap)
		if err != nil {
			return nil, err
		}
		rdata, err := r.readAll()
		if err != nil {
			return nil, err
		}
		ndata, err := n.readAll()
		if err != nil {
			return nil, err
		}
		rdb, ndb := parseAccounts(rdata), parseAccounts(ndata)
		if same {
			// Untouched by the admin: the image's stays, but the
			// image may have renumbered a user that owns the
			// admin's files.
			m.remap(f, rdb, ndb)
			continue
		}
		odb := &accountDB{index: map[string]int{}}
		if o != nil {
			data, err := o.readAll()
			if err != nil {
				return nil, err
			}
			odb = parseAccounts(data)
		}
		out, notes := mergeAccounts(f, odb, rdb, ndb)
		shown := "/" + rel
		for _, nt := range notes {
			m.rep.Accounts = append(m.rep.Accounts, AccountChange{File: shown, Name: nt.name, Change: nt.change, Detail: nt.detail})
			if nt.conflict {
				m.rep.Conflicts = append(m.rep.Conflicts, Conflict{Path: shown, Reason: nt.detail})
			}
		}
		m.remap(f, rdb, out)
		// Owner, mode and labels: the image's, unless only the admin
		// changed them.
		src := n
		if o != nil && !sameMeta(o, r) && sameMeta(o, n) {
			src = r
		}
		mt := meta{kind: kindFile, uid: src.uid, gid: src.gid, perm: src.perm, xattrs: src.xattrs}
		data := out.format()
		if bytes.Equal(data, ndata) && src == n {
			m.rep.Taken = append(m.rep.Taken, shown)
			continue
		}
		if err := writeFileAt(nfd, f.file, rel, data, mt); err != nil {
			return nil, err
		}
		m.rep.Kept = append(m.rep.Kept, shown)
	}
	return done, nil
}

// remap records the id changes of passwd or group for copied files.
func (m *merger) remap(f accountFormat, running, merged *accountDB) {
	switch f.file {
	case "passwd":
		m.uidMap = idRemap(f, running, merged)
		m.rep.Remapped = append(m.rep.Remapped, remaps("uid", m.uidMap)...)
	case "group":
		m.gidMap = idRemap(f, running, merged)
		m.rep.Remapped = append(m.rep.Remapped, remaps("gid", m.gidMap)...)
	}
}

func remaps(what string, ids map[uint32]uint32) []Remap {
	var out []Remap
	for from, to := range ids {
		out = append(out, Remap{ID: what, From: from, To: to})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].From < out[j].From })
	return out
}
