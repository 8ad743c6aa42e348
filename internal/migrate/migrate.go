// Package migrate carries the admin's configuration from the running layer
// to the first layer of a new base: a three-way merge of /etc.
//
// Vocabulary: the old base is what the previous image shipped, the running
// layer is what the admin made of it, the new layer is a fresh snapshot of
// the new base, the only tree that is written. For every path the admin's
// change (old base → running) and the image's change (old base → new) are
// compared:
//
//   - unchanged by the admin: the new image's version stays (taken);
//   - changed by the admin only: the admin's is copied in (kept, or added
//     when the old base had no such path), or removed when the admin
//     removed it (deleted);
//   - changed by both, differently: the admin's wins and the image's is
//     moved beside it as <path>.imgnew (a conflict). When the admin deleted
//     what the image changed, the deletion stands and the image's version
//     is still put aside as <path>.imgnew, so nothing shipped is silently
//     lost. When the image dropped what the admin changed, the admin's is
//     kept and reported as a conflict.
//
// A change is any difference of type, content, mode, owner, extended
// attributes (SELinux labels, ACLs) or symlink target. A directory present
// as a directory in both the running and the new layer is merged entry by
// entry; anywhere else a directory is compared and copied as a whole subtree,
// which is how type changes (file ↔ directory ↔ symlink) fall out of the
// same rules. passwd, group, shadow and gshadow are merged by entry name
// (see accounts.go); files the admin copies keep their hard links; files
// (and named ACL entries) whose user or group the new image renumbered are
// given the new id. A few generated files (ld.so.cache, the shadow-utils
// "-" backups) are always the new image's.
//
// Safety: each tree is walked from a directory descriptor, one component at
// a time, with O_NOFOLLOW and AT_SYMLINK_NOFOLLOW; symlinks are read with
// readlinkat and recreated with symlinkat, never followed. This is stricter
// than resolving inside a root (openat2 RESOLVE_IN_ROOT or securejoin): a
// link in /etc cannot lead the merge anywhere, not even elsewhere inside a
// root, and it needs no kernel newer than EL8's.
//
// Atomicity: a replaced file is written to a temporary name, synced and
// renamed over the old one. The merge as a whole is not a transaction: the
// caller owns the new layer and discards it if Etc fails.
package migrate

import (
	"context"
	"fmt"
	"log/slog"
	"path"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Roots are the three trees, mounted by the caller.
type Roots struct {
	OldBase string // root of the old base (read only)
	Running string // root of the running layer (read only)
	New     string // root of the new layer (written)
	// Snapshot says Running is a thin snapshot of OldBase, as a layer is
	// of its base: what the admin left untouched is recognised without
	// reading it.
	Snapshot bool
	// Owned are paths (relative, "etc/…") that imgbase itself writes into
	// the new root after the merge: they are left out of it, and so of the
	// report, which is about the admin's changes.
	Owned []string
	// FstabOwned says which lines of /etc/fstab (given as fields) imgbase
	// writes into the new root after the merge, besides the / line, which
	// always is: they are not the admin's changes (see fstab).
	FstabOwned func(fields []string) bool
}

// Etc merges /etc of roots.Running into roots.New.
func Etc(ctx context.Context, roots Roots, log *slog.Logger) (*Report, error) {
	return Paths(ctx, roots, []string{"etc"}, log)
}

// Paths merges each of paths (relative to the roots, e.g. "etc",
// "root/.ssh") the way Etc merges /etc. A path whose parent directory is
// missing from the new root is skipped with a warning. On error the report
// of what was done so far is returned with it.
func Paths(ctx context.Context, roots Roots, paths []string, log *slog.Logger) (*Report, error) {
	m := &merger{log: log, rep: &Report{}, links: map[[2]uint64]string{}, snap: roots.Snapshot, owned: map[string]bool{},
		fstabOwned: roots.FstabOwned}
	for _, p := range roots.Owned {
		m.owned[strings.Trim(path.Clean("/"+p), "/")] = true
	}
	var err error
	if m.old, err = openRoot(roots.OldBase); err != nil {
		return nil, err
	}
	defer unix.Close(m.old)
	if m.run, err = openRoot(roots.Running); err != nil {
		return nil, err
	}
	defer unix.Close(m.run)
	if m.new, err = openRoot(roots.New); err != nil {
		return nil, err
	}
	defer unix.Close(m.new)
	if err := unix.Lstat(procPath(m.new, "."), &unix.Stat_t{}); err != nil {
		return nil, fmt.Errorf("cannot reach /proc/self/fd, needed for extended attributes: %w", err)
	}
	var rels []string
	for _, p := range paths {
		rel := strings.Trim(path.Clean("/"+p), "/")
		if rel == "" {
			return nil, fmt.Errorf("cannot merge the whole root: give a path below it")
		}
		rels = append(rels, rel)
	}
	// /etc first: its account merge decides the ids of copied files.
	sort.SliceStable(rels, func(i, j int) bool { return rels[i] == "etc" && rels[j] != "etc" })
	for _, rel := range rels {
		if err := m.top(ctx, rel); err != nil {
			return m.rep, err
		}
	}
	m.rep.Finished = time.Now().UTC()
	log.Info("configuration carried over", "taken", len(m.rep.Taken), "kept", len(m.rep.Kept),
		"added", len(m.rep.Added), "deleted", len(m.rep.Deleted), "conflicts", len(m.rep.Conflicts))
	return m.rep, nil
}

// NotDirError is returned when a path given to merge is not a directory in
// one of the layers (a symlinked /etc is refused, not followed or copied).
type NotDirError struct {
	Path, Layer, Kind string
}

func (e *NotDirError) Error() string {
	return fmt.Sprintf("cannot merge %s: it is a %s in the %s, not a directory", e.Path, e.Kind, e.Layer)
}

func openRoot(p string) (int, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("cannot open root %s: %w", p, err)
	}
	return fd, nil
}

type merger struct {
	log           *slog.Logger
	snap          bool            // Roots.Snapshot
	owned         map[string]bool // Roots.Owned
	fstabOwned    func([]string) bool
	rep           *Report
	old, run, new int // root directory descriptors

	// links maps a running-layer inode to the path it was first copied to,
	// so its other names become hard links again.
	links  map[[2]uint64]string
	uidMap map[uint32]uint32
	gidMap map[uint32]uint32
}

// top merges one top-level path: its parents are walked in each tree
// without following symlinks; a tree whose parent is missing (or a symlink)
// simply has no such path.
func (m *merger) top(ctx context.Context, rel string) error {
	parts := strings.Split(rel, "/")
	dirs := [3]int{}
	for i, root := range []int{m.old, m.run, m.new} {
		fd, err := unix.Dup(root)
		if err != nil {
			return fmt.Errorf("cannot merge /%s: %w", rel, err)
		}
		for _, c := range parts[:len(parts)-1] {
			next, err := openDirAt(fd, c, c)
			unix.Close(fd)
			fd = next
			if err != nil {
				break
			}
		}
		dirs[i] = fd
	}
	defer func() {
		for _, fd := range dirs {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
	}()
	if dirs[2] < 0 {
		m.log.Warn("not carried over; its parent directory is missing from the new layer", "path", "/"+rel)
		return nil
	}
	name := parts[len(parts)-1]
	o, r, n, err := m.stat3(dirs[0], dirs[1], dirs[2], name, rel)
	if err != nil {
		return err
	}
	// Replacing /etc as a whole by whatever the admin put there would
	// follow the rules and wreck the new layer: refuse instead.
	for _, t := range []struct {
		n     *node
		layer string
	}{{o, "old base"}, {r, "running layer"}, {n, "new layer"}} {
		if t.n != nil && t.n.kind != kindDir {
			return &NotDirError{Path: "/" + rel, Layer: t.layer, Kind: t.n.kind.String()}
		}
	}
	if r == nil {
		m.log.Info("nothing to carry; missing from the running layer", "path", "/"+rel)
		return nil
	}
	if err := m.merge(ctx, o, r, n, dirs[2], name, rel); err != nil {
		return err
	}
	return fsyncDir(dirs[2], rel)
}

func (m *merger) stat3(ofd, rfd, nfd int, name, rel string) (o, r, n *node, err error) {
	if o, err = statAt(ofd, name, rel); err != nil {
		return
	}
	if r, err = statAt(rfd, name, rel); err != nil {
		return
	}
	n, err = statAt(nfd, name, rel)
	// Sockets are endpoints of running programs, not configuration.
	o, r, n = noSocket(o), noSocket(r), noSocket(n)
	return
}

func noSocket(n *node) *node {
	if n != nil && n.kind == kindSocket {
		return nil
	}
	return n
}

// merge decides one path (see the package comment) and writes the result
// as the entry name of ndir in the new tree.
func (m *merger) merge(ctx context.Context, o, r, n *node, ndir int, name, rel string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if hostState(rel) {
		// The host's own identity and records, not configuration: whatever
		// either image ships, the running layer's stays.
		if r == nil {
			return nil
		}
		if same, err := subtreeEqual(r, n, false); err != nil || same {
			return err
		}
		if err := m.put(ndir, name, r, n); err != nil {
			return err
		}
		m.rep.Kept = append(m.rep.Kept, "/"+rel)
		return nil
	}
	if r != nil && n != nil && r.kind == kindDir && n.kind == kindDir {
		return m.mergeDir(ctx, o, r, n, ndir, name, rel)
	}
	same, err := subtreeEqual(o, r, m.snap)
	if err != nil {
		return err
	}
	adminChanged := !same
	if same, err = subtreeEqual(o, n, false); err != nil {
		return err
	}
	imageChanged := !same
	shown := "/" + rel

	switch {
	case !adminChanged:
		if imageChanged {
			m.rep.Taken = append(m.rep.Taken, shown)
		}
		return nil

	case !imageChanged:
		if r == nil {
			m.log.Debug("deleted by the admin", "path", shown)
			if err := removeAll(ndir, name, rel); err != nil {
				return err
			}
			m.rep.Deleted = append(m.rep.Deleted, shown)
			return nil
		}
		if err := m.put(ndir, name, r, n); err != nil {
			return err
		}
		if o == nil {
			m.rep.Added = append(m.rep.Added, shown)
		} else {
			m.rep.Kept = append(m.rep.Kept, shown)
		}
		return nil
	}

	// Changed by both.
	if same, err = subtreeEqual(r, n, false); err != nil {
		return err
	}
	if same {
		m.rep.Taken = append(m.rep.Taken, shown) // both made the same change
		return nil
	}
	c := Conflict{Path: shown}
	switch {
	case r == nil:
		aside, err := moveAside(ndir, name, rel)
		if err != nil {
			return err
		}
		c.Reason = "deleted by the admin, changed by the new image: stays deleted"
		c.ImageCopy = path.Join(path.Dir(shown), aside)
	case n == nil:
		if err := m.copyIn(ndir, name, rel, r); err != nil {
			return err
		}
		c.Reason = "changed by the admin, removed by the new image: kept the admin's"
	default:
		aside, err := moveAside(ndir, name, rel)
		if err != nil {
			return err
		}
		if err := m.copyIn(ndir, name, rel, r); err != nil {
			return err
		}
		c.Reason = "changed by the admin and by the new image: kept the admin's"
		if o == nil {
			c.Reason = "added by the admin and by the new image, differently: kept the admin's"
		}
		if r.kind != n.kind {
			c.Reason += fmt.Sprintf(" (%s; the image's is a %s)", r.kind, n.kind)
		}
		c.ImageCopy = path.Join(path.Dir(shown), aside)
	}
	m.log.Debug("conflict", "path", shown, "reason", c.Reason)
	m.rep.Conflicts = append(m.rep.Conflicts, c)
	return nil
}

// put replaces the new layer's n (possibly nil) with the admin's r.
func (m *merger) put(ndir int, name string, r, n *node) error {
	// A directory is never renamed over, nor replaced by a rename.
	if n != nil && (n.kind == kindDir || r.kind == kindDir) {
		if err := removeAll(ndir, name, n.rel); err != nil {
			return err
		}
	}
	return m.copyIn(ndir, name, r.rel, r)
}

// mergeDir merges a directory that is a directory in both the running and
// the new layer: its own metadata three ways, then each entry.
func (m *merger) mergeDir(ctx context.Context, o, r, n *node, ndir int, name, rel string) error {
	shown := "/" + rel + "/"
	if o != nil && o.kind != kindDir {
		o = nil // a file became a directory on both sides: children are new on both
	}
	if !sameMeta(r, n) {
		switch {
		case o != nil && sameMeta(o, r):
			m.rep.Taken = append(m.rep.Taken, shown)
		case o != nil && sameMeta(o, n):
			if err := m.dirMeta(ndir, name, rel, r); err != nil {
				return err
			}
			m.rep.Kept = append(m.rep.Kept, shown)
		default:
			if err := m.dirMeta(ndir, name, rel, r); err != nil {
				return err
			}
			m.rep.Conflicts = append(m.rep.Conflicts, Conflict{Path: shown,
				Reason: "directory owner, mode or attributes changed by the admin and by the new image: kept the admin's"})
		}
	}

	ofd := -1
	if o != nil {
		fd, err := o.openDir()
		if err != nil {
			return err
		}
		ofd = fd
		defer unix.Close(ofd)
	}
	rfd, err := r.openDir()
	if err != nil {
		return err
	}
	defer unix.Close(rfd)
	nfd, err := n.openDir()
	if err != nil {
		return err
	}
	defer unix.Close(nfd)

	names := map[string]bool{}
	for _, fd := range []int{ofd, rfd, nfd} {
		if fd < 0 {
			continue
		}
		ns, err := readDirNames(fd, rel)
		if err != nil {
			return err
		}
		for _, c := range ns {
			names[c] = true
		}
	}
	skip := map[string]bool{}
	if rel == "etc" {
		done, err := m.accounts(ofd, rfd, nfd)
		if err != nil {
			return err
		}
		for _, f := range done {
			skip[f] = true
		}
		if !m.owned["etc/fstab"] {
			handled, err := m.fstab(ofd, rfd, nfd)
			if err != nil {
				return err
			}
			skip["fstab"] = handled
		}
	}
	for _, c := range sortedKeys(names) {
		crel := rel + "/" + c
		if skip[c] || generated[crel] || m.owned[crel] {
			continue
		}
		co, cr, cn, err := m.stat3(ofd, rfd, nfd, c, crel)
		if err != nil {
			return err
		}
		// A .imgnew the old base did not ship is ours, from an earlier
		// update; this merge puts fresh ones where they are due.
		if strings.HasSuffix(c, asideSuffix) && co == nil {
			continue
		}
		if err := m.merge(ctx, co, cr, cn, nfd, c, crel); err != nil {
			return err
		}
	}
	return fsyncDir(nfd, rel)
}

// generated are files tools rebuild from other configuration: carrying the
// running layer's would only produce conflicts (the shadow-utils backups)
// or point the new base at the old one's libraries (ld.so.cache). The new
// image's version always stays.
var generated = map[string]bool{
	"etc/ld.so.cache": true,
	"etc/passwd-":     true,
	"etc/group-":      true,
	"etc/shadow-":     true,
	"etc/gshadow-":    true,
	"etc/subuid-":     true,
	"etc/subgid-":     true,
	"etc/.pwd.lock":   true,
	"etc/.updated":    true,
}

// hostState reports whether rel is the host's identity or its own records
// rather than configuration: the machine id (an image that ships one would
// otherwise give every host the same, or change it at each update), the
// clock's drift record, the SSH host keys, and lvm2's metadata backups of
// the host's volume groups.
func hostState(rel string) bool {
	switch rel {
	case "etc/machine-id", "etc/adjtime", "etc/lvm/archive", "etc/lvm/backup":
		return true
	}
	return strings.HasPrefix(rel, "etc/ssh/ssh_host_")
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
