package migrate

// Copying the running layer's entries into the new layer, with the owner
// ids the account merge decided.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"os"

	"golang.org/x/sys/unix"
)

// dirMeta gives an existing directory of the new layer r's owner, mode and
// xattrs, through a descriptor of that very directory.
func (m *merger) dirMeta(ndir int, name, rel string, r *node) error {
	fd, err := openDirAt(ndir, name, rel)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	mt := m.metaOf(r)
	mt.atime, mt.mtime = nil, nil
	return applyMeta(fd, ".", rel, mt)
}

// metaOf is the metadata of a running-layer node as it is written into the
// new layer: owners whose id the new image changed get the new id.
func (m *merger) metaOf(r *node) meta {
	mt := meta{kind: r.kind, uid: r.uid, gid: r.gid, perm: r.perm, xattrs: r.xattrs}
	if u, ok := m.uidMap[r.uid]; ok {
		mt.uid = u
	}
	if g, ok := m.gidMap[r.gid]; ok {
		mt.gid = g
	}
	if len(m.uidMap)+len(m.gidMap) > 0 {
		for _, name := range []string{"system.posix_acl_access", "system.posix_acl_default"} {
			if acl, ok := r.xattrs[name]; ok {
				if re := remapACL(acl, m.uidMap, m.gidMap); re != nil {
					x := maps.Clone(mt.xattrs)
					x[name] = re
					mt.xattrs = x
				}
			}
		}
	}
	at, mtime := r.atime, r.mtime
	mt.atime, mt.mtime = &at, &mtime
	return mt
}

// remapACL rewrites the named user and group entries of a POSIX ACL in its
// xattr form (a 4-byte version, then 8-byte tag/perm/id entries), or
// returns nil when nothing changes or the value is not understood.
func remapACL(acl []byte, uids, gids map[uint32]uint32) []byte {
	const aclUser, aclGroup = 0x02, 0x08
	if len(acl) < 4 || (len(acl)-4)%8 != 0 || binary.LittleEndian.Uint32(acl) != 2 {
		return nil
	}
	out := bytes.Clone(acl)
	changed := false
	for off := 4; off < len(out); off += 8 {
		var ids map[uint32]uint32
		switch binary.LittleEndian.Uint16(out[off:]) {
		case aclUser:
			ids = uids
		case aclGroup:
			ids = gids
		default:
			continue
		}
		if to, ok := ids[binary.LittleEndian.Uint32(out[off+4:])]; ok {
			binary.LittleEndian.PutUint32(out[off+4:], to)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return out
}

// copyIn writes the running layer's r, and everything below it, as name in
// ndir. A non-directory replaces whatever non-directory is there; a
// directory is created, so name must not exist.
func (m *merger) copyIn(ndir int, name, rel string, r *node) error {
	mt := m.metaOf(r)
	switch r.kind {
	case kindDir:
		return m.copyDir(ndir, name, rel, r, mt)
	case kindFile:
		if r.nlink > 1 {
			key := [2]uint64{r.dev, r.ino}
			if first, ok := m.links[key]; ok {
				return linkAt(m.new, first, ndir, name, rel)
			}
			defer func() { m.links[key] = rel }()
		}
		return replaceAt(ndir, name, rel, mt, func(tmp string) error {
			return createFile(ndir, tmp, rel, func(f *os.File) error { return copyContent(r, f) })
		})
	case kindSymlink:
		return replaceAt(ndir, name, rel, mt, func(tmp string) error {
			if err := unix.Symlinkat(r.target, ndir, tmp); err != nil {
				return fmt.Errorf("cannot create symlink %s: %w", rel, err)
			}
			return nil
		})
	case kindFIFO, kindChar, kindBlock:
		mode := map[kind]uint32{kindFIFO: unix.S_IFIFO, kindChar: unix.S_IFCHR, kindBlock: unix.S_IFBLK}[r.kind]
		return replaceAt(ndir, name, rel, mt, func(tmp string) error {
			if err := unix.Mknodat(ndir, tmp, mode|0o600, int(r.rdev)); err != nil {
				return fmt.Errorf("cannot create %s %s: %w", r.kind, rel, err)
			}
			return nil
		})
	}
	return fmt.Errorf("cannot copy %s: unsupported %s", rel, r.kind)
}

func (m *merger) copyDir(ndir int, name, rel string, r *node, mt meta) error {
	if err := unix.Mkdirat(ndir, name, 0o700); err != nil {
		return fmt.Errorf("cannot create directory %s: %w", rel, err)
	}
	nfd, err := openDirAt(ndir, name, rel)
	if err != nil {
		return err
	}
	defer unix.Close(nfd)
	rfd, err := r.openDir()
	if err != nil {
		return err
	}
	defer unix.Close(rfd)
	names, err := readDirNames(rfd, rel)
	if err != nil {
		return err
	}
	for _, c := range names {
		crel := rel + "/" + c
		if m.owned[crel] {
			continue
		}
		child, err := statAt(rfd, c, crel)
		if err != nil {
			return err
		}
		if child = noSocket(child); child == nil {
			continue
		}
		if err := m.copyIn(nfd, c, crel, child); err != nil {
			return err
		}
	}
	if err := fsyncDir(nfd, rel); err != nil {
		return err
	}
	// Times last: creating the children changed them.
	return applyMeta(nfd, ".", rel, mt)
}

func fsyncDir(fd int, rel string) error {
	if err := unix.Fsync(fd); err != nil {
		return fmt.Errorf("cannot sync directory %s: %w", rel, err)
	}
	return nil
}
