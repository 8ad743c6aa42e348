package migrate

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// The account databases are merged by entry name, never by line: a line
// diff of passwd would happily give two users one uid, or drop the admin's
// user because the image added one on the neighbouring line.

// accountFormat describes one colon-separated database.
type accountFormat struct {
	file   string
	what   string   // "user" or "group", for messages
	fields []string // field names, for messages
	id     int      // index of the numeric id, -1 when none
	lists  []int    // comma-separated member lists, merged as sets
}

var accountFormats = []accountFormat{
	// passwd and group first: their ids decide the owner remapping.
	{file: "passwd", what: "user", id: 2,
		fields: []string{"name", "password", "uid", "gid", "gecos", "home", "shell"}},
	{file: "group", what: "group", id: 2, lists: []int{3},
		fields: []string{"name", "password", "gid", "members"}},
	{file: "shadow", what: "user", id: -1,
		fields: []string{"name", "password", "lastchg", "min", "max", "warn", "inactive", "expire", "reserved"}},
	{file: "gshadow", what: "group", id: -1, lists: []int{2, 3},
		fields: []string{"name", "password", "admins", "members"}},
}

func (f accountFormat) fieldName(i int) string {
	if i < len(f.fields) {
		return f.fields[i]
	}
	return "field " + strconv.Itoa(i+1)
}

func (f accountFormat) isList(i int) bool {
	for _, l := range f.lists {
		if l == i {
			return true
		}
	}
	return false
}

// accountDB is one parsed database, in file order.
type accountDB struct {
	entries []accountEntry
	index   map[string]int
}

// accountEntry is one line. key is the entry's name; lines that name no
// entry (comments, NIS "+"/"-" lines, lines without a colon, a repeated
// name) are opaque: keyed by the whole line, carried but never merged.
type accountEntry struct {
	key    string
	fields []string
}

func (e accountEntry) opaque() bool { return strings.HasPrefix(e.key, "\x00") }

func (e accountEntry) line() string { return strings.Join(e.fields, ":") }

func (e accountEntry) field(i int) string {
	if i < len(e.fields) {
		return e.fields[i]
	}
	return ""
}

// parseAccounts parses a passwd-style database. It never fails: whatever
// it does not understand is kept as an opaque line.
func parseAccounts(data []byte) *accountDB {
	db := &accountDB{index: map[string]int{}}
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" {
			continue
		}
		fields := strings.Split(line, ":")
		key := fields[0]
		if len(fields) < 2 || key == "" || strings.ContainsAny(key[:1], "#+-") {
			key = "\x00" + line
		}
		if _, dup := db.index[key]; dup {
			if strings.HasPrefix(key, "\x00") {
				continue // the very same opaque line twice says nothing more
			}
			key = "\x00" + line
			if _, dup := db.index[key]; dup {
				continue
			}
		}
		db.add(accountEntry{key: key, fields: fields})
	}
	return db
}

func (db *accountDB) add(e accountEntry) {
	db.index[e.key] = len(db.entries)
	db.entries = append(db.entries, e)
}

func (db *accountDB) get(key string) (accountEntry, bool) {
	i, ok := db.index[key]
	if !ok {
		return accountEntry{}, false
	}
	return db.entries[i], true
}

func (db *accountDB) format() []byte {
	var b bytes.Buffer
	for _, e := range db.entries {
		b.WriteString(e.line())
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func sameFields(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// accountNote is one outcome of an account merge worth reporting.
type accountNote struct {
	name     string
	change   string // added, kept, deleted, conflict, clash
	detail   string
	conflict bool // also a conflict for the report's conflict list
}

// mergeAccounts merges one database three ways: o from the old base, r from
// the running layer, n from the new base. The result keeps n's order and
// appends the admin's entries that n lacks in r's order.
func mergeAccounts(f accountFormat, o, r, n *accountDB) (*accountDB, []accountNote) {
	out := &accountDB{index: map[string]int{}}
	var notes []accountNote
	decide := func(key string) {
		oe, inO := o.get(key)
		re, inR := r.get(key)
		ne, inN := n.get(key)
		name := key
		if strings.HasPrefix(name, "\x00") {
			name = strings.TrimPrefix(name, "\x00")
		}
		note := func(change, detail string, conflict bool) {
			notes = append(notes, accountNote{name: name, change: change, detail: detail, conflict: conflict})
		}
		switch {
		case inR && inN:
			switch {
			case sameFields(re.fields, ne.fields):
				out.add(ne)
			case inO && sameFields(oe.fields, re.fields):
				out.add(ne)
			case inO && sameFields(oe.fields, ne.fields):
				out.add(re)
				note("kept", "changed by the admin", false)
			default:
				e, clashes := mergeFields(f, oe, re, ne, inO)
				out.add(e)
				if f.id >= 0 && re.field(f.id) != ne.field(f.id) {
					note("clash", fmt.Sprintf("%s %s: %s %s in the running layer (kept), %s in the new image",
						f.what, name, f.fieldName(f.id), re.field(f.id), ne.field(f.id)), true)
				} else if len(clashes) > 0 {
					note("conflict", fmt.Sprintf("%s %s: %s changed by the admin and by the new image: kept the admin's",
						f.what, name, strings.Join(clashes, ", ")), true)
				} else {
					note("kept", "merged the admin's changes with the new image's", false)
				}
			}
		case inR && !inN:
			switch {
			case !inO:
				out.add(re)
				note("added", "by the admin", false)
			case sameFields(oe.fields, re.fields):
				// removed by the new image, untouched by the admin
			default:
				out.add(re)
				note("conflict", fmt.Sprintf("%s %s: changed by the admin, removed by the new image: kept the admin's", f.what, name), true)
			}
		case !inR && inN:
			switch {
			case !inO:
				out.add(ne) // added by the new image
			case sameFields(oe.fields, ne.fields):
				note("deleted", "by the admin", false)
			default:
				note("conflict", fmt.Sprintf("%s %s: deleted by the admin, changed by the new image: stays deleted", f.what, name), true)
			}
		}
	}
	for _, e := range n.entries {
		decide(e.key)
	}
	for _, e := range r.entries {
		if _, ok := n.get(e.key); !ok {
			decide(e.key)
		}
	}
	notes = append(notes, idClashes(f, out, r, n)...)
	return out, notes
}

// mergeFields merges one entry field by field: a field the admin changed is
// the admin's, any other is the image's; member lists are merged as sets.
// It returns the names of fields both sides changed differently.
func mergeFields(f accountFormat, o, r, n accountEntry, inO bool) (accountEntry, []string) {
	size := max(len(r.fields), len(n.fields))
	fields := make([]string, size)
	var clashes []string
	for i := range fields {
		ov, rv, nv := o.field(i), r.field(i), n.field(i)
		switch {
		case f.isList(i):
			fields[i] = mergeList(ov, rv, nv)
		case inO && rv == ov:
			fields[i] = nv
		case nv == rv || (inO && nv == ov):
			fields[i] = rv
		default:
			fields[i] = rv
			clashes = append(clashes, f.fieldName(i))
		}
	}
	return accountEntry{key: r.key, fields: fields}, clashes
}

// mergeList applies the admin's additions and removals to the image's list.
func mergeList(o, r, n string) string {
	split := func(s string) []string {
		if s == "" {
			return nil
		}
		return strings.Split(s, ",")
	}
	inO := map[string]bool{}
	for _, x := range split(o) {
		inO[x] = true
	}
	inR := map[string]bool{}
	for _, x := range split(r) {
		inR[x] = true
	}
	var out []string
	seen := map[string]bool{}
	for _, x := range split(n) {
		if inO[x] && !inR[x] {
			continue // removed by the admin
		}
		if !seen[x] {
			out = append(out, x)
			seen[x] = true
		}
	}
	for _, x := range split(r) {
		if !inO[x] && !seen[x] {
			out = append(out, x)
			seen[x] = true
		}
	}
	return strings.Join(out, ",")
}

// idClashes reports ids that the merge gave to several names which did not
// already share it in the running layer or in the new image (root and toor
// sharing uid 0 on purpose is no clash).
func idClashes(f accountFormat, out, r, n *accountDB) []accountNote {
	if f.id < 0 {
		return nil
	}
	byID := map[string][]string{}
	for _, e := range out.entries {
		if e.opaque() {
			continue
		}
		id := e.field(f.id)
		byID[id] = append(byID[id], e.key)
	}
	sharedIn := func(db *accountDB, id string, names []string) bool {
		for _, nm := range names {
			e, ok := db.get(nm)
			if !ok || e.field(f.id) != id {
				return false
			}
		}
		return true
	}
	var notes []accountNote
	ids := make([]string, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		names := byID[id]
		if len(names) < 2 || sharedIn(r, id, names) || sharedIn(n, id, names) {
			continue
		}
		notes = append(notes, accountNote{
			name:     strings.Join(names, ","),
			change:   "clash",
			detail:   fmt.Sprintf("%ss %s share %s %s", f.what, strings.Join(names, ", "), f.fieldName(f.id), id),
			conflict: true,
		})
	}
	return notes
}

// idRemap maps the running layer's ids to the merged ones where the merge
// gave a name a different id (the new image renumbered a system user), so
// the admin's files copied across stay owned by the same name.
func idRemap(f accountFormat, r, out *accountDB) map[uint32]uint32 {
	if f.id < 0 {
		return nil
	}
	m := map[uint32]uint32{}
	ambiguous := map[uint32]bool{}
	for _, re := range r.entries {
		if re.opaque() {
			continue
		}
		me, ok := out.get(re.key)
		if !ok {
			continue
		}
		from, err1 := strconv.ParseUint(re.field(f.id), 10, 32)
		to, err2 := strconv.ParseUint(me.field(f.id), 10, 32)
		if err1 != nil || err2 != nil || from == to {
			continue
		}
		if prev, ok := m[uint32(from)]; ok && prev != uint32(to) {
			ambiguous[uint32(from)] = true
		}
		m[uint32(from)] = uint32(to)
	}
	for id := range ambiguous {
		delete(m, id)
	}
	return m
}
