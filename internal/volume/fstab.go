package volume

import (
	"sort"
	"strings"

	"github.com/imgbase/imgbase/internal/layout"
	"github.com/imgbase/imgbase/internal/nvr"
)

// Entry is a volume's line in an fstab.
type Entry struct {
	VG, LV, Path, FSType string
}

// Dev is the device the line names: /dev/VG/LV, stable across layers and
// boots (a UUID would be too, but the LV name is what an admin recognises).
func (e Entry) Dev() string { return "/dev/" + e.VG + "/" + e.LV }

// Line is the fstab line: discard gives freed blocks back to the thin
// pool; pass 2 checks it after /.
func (e Entry) Line() string {
	return e.Dev() + " " + e.Path + " " + e.FSType + " defaults,discard 0 2"
}

// names reports whether an fstab device field names this volume.
func (e Entry) names(dev string) bool {
	return dev == e.Dev() || dev == "/dev/mapper/"+nvr.DMName(e.VG, e.LV)
}

// disabledMark starts a line AddToFstab turned off because it mounted
// something else on the volume's path; RemoveFromFstab turns it on again.
const disabledMark = "#imgbase-volume# "

// AddToFstab returns fstab with e's line. The line goes before the first
// line mounting something below e.Path, else at the end, so that parents
// mount before their children (/var before /var/log) for mount -a as for
// systemd. A line that mounts something else on e.Path is disabled. An
// fstab that already has e's line is returned unchanged.
func AddToFstab(fstab []byte, e Entry) []byte {
	lines := splitLines(fstab)
	at := len(lines)
	for i, l := range lines {
		dev, mnt, ok := fields(l)
		if !ok {
			continue
		}
		switch {
		case mnt == e.Path && e.names(dev):
			return fstab
		case mnt == e.Path:
			lines[i] = disabledMark + l
		case under(mnt, e.Path) && at == len(lines):
			at = i
		}
	}
	out := make([]string, 0, len(lines)+1)
	out = append(out, lines[:at]...)
	out = append(out, e.Line()+"\n")
	out = append(out, lines[at:]...)
	return []byte(strings.Join(out, ""))
}

// RemoveFromFstab returns fstab without e's line, with the lines
// AddToFstab disabled for e.Path enabled again.
func RemoveFromFstab(fstab []byte, e Entry) []byte {
	lines := splitLines(fstab)
	out := lines[:0]
	for _, l := range lines {
		if dev, mnt, ok := fields(l); ok && mnt == e.Path && e.names(dev) {
			continue
		}
		if rest, found := strings.CutPrefix(l, disabledMark); found {
			if _, mnt, ok := fields(rest); ok && mnt == e.Path {
				l = rest
			}
		}
		out = append(out, l)
	}
	return []byte(strings.Join(out, ""))
}

// Mounts returns the device an fstab mounts on path, or "".
func Mounts(fstab []byte, path string) string {
	for _, l := range splitLines(fstab) {
		if dev, mnt, ok := fields(l); ok && mnt == path {
			return dev
		}
	}
	return ""
}

// splitLines splits an fstab into lines that each end in a newline.
func splitLines(fstab []byte) []string {
	if len(fstab) == 0 {
		return nil
	}
	lines := strings.SplitAfter(string(fstab), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	} else {
		lines[len(lines)-1] += "\n"
	}
	return lines
}

// fields returns the device and mount point of an active fstab line.
func fields(line string) (dev, mnt string, ok bool) {
	f := strings.Fields(line)
	if len(f) < 2 || strings.HasPrefix(f[0], "#") {
		return "", "", false
	}
	// fstab writes a space in a path as \040; volume paths have none, so
	// a raw comparison is exact for them.
	return f[0], strings.TrimSuffix(f[1], "/"), true
}

// Entries returns the volume lines of an fstab (the running layer's):
// those whose device is a volume of t. A new layer made from a base gets
// them with AddAll, so that it mounts the same volumes.
func Entries(fstab []byte, t *layout.Tree) []Entry {
	var out []Entry
	for _, l := range splitLines(fstab) {
		dev, mnt, ok := fields(l)
		if !ok {
			continue
		}
		for _, v := range t.Volumes {
			e := Entry{VG: t.VG, LV: v.Name, Path: mnt}
			if e.names(dev) {
				if f := strings.Fields(l); len(f) > 2 {
					e.FSType = f[2]
				}
				out = append(out, e)
			}
		}
	}
	return out
}

// AddAll adds every entry to fstab, parents before children.
func AddAll(fstab []byte, entries []Entry) []byte {
	sorted := append([]Entry(nil), entries...)
	sort.SliceStable(sorted, func(i, j int) bool {
		return strings.Count(sorted[i].Path, "/") < strings.Count(sorted[j].Path, "/")
	})
	for _, e := range sorted {
		fstab = AddToFstab(fstab, e)
	}
	return fstab
}
