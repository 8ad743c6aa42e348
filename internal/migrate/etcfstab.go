package migrate

import (
	"bytes"
	"path"
	"strings"
)

// fstab merges /etc/fstab line by line, leaving out of the comparison the
// lines imgbase writes itself (Roots.FstabOwned: the / line, the volumes',
// the host's /boot, ESP and swap), which the caller writes into the new
// layer afresh after the merge. Compared whole, every layer's fstab differs
// from its base's (imgbase rewrote the / line), so any image whose fstab
// changed would be a conflict the admin never made. It reports whether it
// handled the file; anything but three regular files (or the old base
// without one) is left to the ordinary rules.
//
// The admin's change is the difference of the other lines: none → the
// image's fstab stays; else the result is the image's lines, less those
// the admin removed, plus those the admin added. An added line for a mount
// point the image's lines also mount, differently, is a conflict: the
// admin's replaces the image's, whose whole fstab is put aside as .imgnew.
func (m *merger) fstab(ofd, rfd, nfd int) (bool, error) {
	const name, rel = "fstab", "etc/fstab"
	o, r, n, err := m.stat3(ofd, rfd, nfd, name, rel)
	if err != nil {
		return false, err
	}
	if r == nil || n == nil || r.kind != kindFile || n.kind != kindFile || (o != nil && o.kind != kindFile) {
		return false, nil
	}
	var odata []byte
	if o != nil {
		if odata, err = o.readAll(); err != nil {
			return false, err
		}
	}
	rdata, err := r.readAll()
	if err != nil {
		return false, err
	}
	ndata, err := n.readAll()
	if err != nil {
		return false, err
	}
	shown := "/" + rel
	okeys, rkeys := m.fstabKeys(odata), m.fstabKeys(rdata)
	if strings.Join(okeys, "\n") == strings.Join(rkeys, "\n") {
		if !bytes.Equal(odata, ndata) {
			m.rep.Taken = append(m.rep.Taken, shown)
		}
		return true, nil
	}
	inOld, inRun := map[string]bool{}, map[string]bool{}
	for _, k := range okeys {
		inOld[k] = true
	}
	for _, k := range rkeys {
		inRun[k] = true
	}
	var added []string // the admin's new lines, as written
	for _, line := range strings.Split(string(rdata), "\n") {
		if k := m.fstabKey(line); k != "" && !inOld[k] {
			added = append(added, line)
		}
	}
	var out []string
	at := map[string]int{} // mount target -> index in out, image's lines
	for _, line := range strings.Split(strings.TrimSuffix(string(ndata), "\n"), "\n") {
		k := m.fstabKey(line)
		if k != "" && inOld[k] && !inRun[k] {
			continue // removed (or changed) by the admin
		}
		if t := fstabTarget(line); t != "" && k != "" {
			at[t] = len(out)
		}
		out = append(out, line)
	}
	conflict := false
	for _, line := range added {
		if i, ok := at[fstabTarget(line)]; ok && fstabTarget(line) != "" {
			if m.fstabKey(out[i]) != m.fstabKey(line) {
				out[i] = line
				conflict = true
			}
			continue
		}
		out = append(out, line)
	}
	data := []byte(strings.Join(out, "\n") + "\n")
	mt := meta{kind: kindFile, uid: n.uid, gid: n.gid, perm: n.perm, xattrs: n.xattrs}
	if conflict {
		aside, err := moveAside(nfd, name, rel)
		if err != nil {
			return false, err
		}
		m.rep.Conflicts = append(m.rep.Conflicts, Conflict{Path: shown, ImageCopy: path.Join("/etc", aside),
			Reason: "a mount changed by the admin and by the new image: kept the admin's line, with the image's other lines"})
	} else {
		m.rep.Kept = append(m.rep.Kept, shown)
	}
	return true, writeFileAt(nfd, name, rel, data, mt)
}

// fstabKeys returns the comparable lines of an fstab: not blank, not
// imgbase's own, spacing normalised.
func (m *merger) fstabKeys(data []byte) []string {
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if k := m.fstabKey(line); k != "" {
			out = append(out, k)
		}
	}
	return out
}

// fstabKey is line with its spacing normalised, or "" for a blank line or
// one imgbase writes itself.
func (m *merger) fstabKey(line string) string {
	f := strings.Fields(line)
	if len(f) == 0 {
		return ""
	}
	if !strings.HasPrefix(f[0], "#") && len(f) >= 2 && (f[1] == "/" || (m.fstabOwned != nil && m.fstabOwned(f))) {
		return ""
	}
	return strings.Join(f, " ")
}

// fstabTarget names what a mount line mounts: its mount point, or its
// device for swap ("none" is every swap line's mount point); "" for a
// comment or a blank line.
func fstabTarget(line string) string {
	f := strings.Fields(line)
	if len(f) < 2 || strings.HasPrefix(f[0], "#") {
		return ""
	}
	if f[1] == "none" || f[1] == "swap" {
		return "swap:" + f[0]
	}
	return f[1]
}
