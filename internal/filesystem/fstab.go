package filesystem

import (
	"strings"
)

// SetRoot rewrites an fstab so that dev is mounted on / as fstype with the
// discard option (freed blocks go back to the thin pool). Other lines,
// comments and spacing are kept; a missing / line is appended.
func SetRoot(fstab []byte, dev, fstype string) []byte {
	lines := strings.SplitAfter(string(fstab), "\n")
	found := false
	for i, line := range lines {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") || f[1] != "/" {
			continue
		}
		if found {
			// Two / lines would make the boot mount the wrong one.
			lines[i] = "# " + line
			continue
		}
		found = true
		for len(f) < 6 {
			f = append(f, map[int]string{2: fstype, 3: "defaults", 4: "0", 5: "1"}[len(f)])
		}
		f[0] = dev
		if fstype != "" && f[2] != fstype {
			// The layer's filesystem is another than the one this fstab
			// was written for (an XFS image on an ext4 host): the old
			// type's options (errors=remount-ro) would fail the mount.
			f[2], f[3] = fstype, "defaults"
			f[5] = map[bool]string{true: "0", false: "1"}[fstype == "xfs"]
		}
		f[3] = withOption(f[3], "discard")
		nl := ""
		if strings.HasSuffix(line, "\n") {
			nl = "\n"
		}
		lines[i] = strings.Join(f, " ") + nl
	}
	out := strings.Join(lines, "")
	if !found {
		if out != "" && !strings.HasSuffix(out, "\n") {
			out += "\n"
		}
		out += dev + " / " + fstype + " defaults,discard 0 1\n"
	}
	return []byte(out)
}

func withOption(opts, opt string) string {
	for _, o := range strings.Split(opts, ",") {
		if o == opt {
			return opts
		}
	}
	if opts == "" || opts == "defaults" {
		return "defaults," + opt
	}
	return opts + "," + opt
}

// Root returns the device fstab mounts on /, or "".
func Root(fstab []byte) string {
	for _, line := range strings.Split(string(fstab), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && !strings.HasPrefix(f[0], "#") && f[1] == "/" {
			return f[0]
		}
	}
	return ""
}

// hostWideMounts are the mount points every layer shares with the host:
// the boot partition and the ESP where distributions mount it.
var hostWideMounts = map[string]bool{"/boot": true, "/boot/efi": true, "/efi": true}

// hostWide says whether an fstab line's fields mount something of the host
// rather than of the layer: /boot, the ESP or swap. key groups the lines
// one replaces: the mount point, or "swap" for every swap line.
func hostWide(f []string) (key string, ok bool) {
	if len(f) < 2 || strings.HasPrefix(f[0], "#") {
		return "", false
	}
	if len(f) >= 3 && f[2] == "swap" {
		return "swap", true
	}
	return f[1], hostWideMounts[f[1]]
}

// IsHostWide says whether an fstab line, given as fields, mounts something
// every layer shares with the host (see HostWide).
func IsHostWide(fields []string) bool {
	_, ok := hostWide(fields)
	return ok
}

// HostWide returns fstab (a layer's) with the host-wide lines of running
// (the running layer's): /boot, /boot/efi, /efi and swap. A layer made
// from an image's base carries the image's fstab, which knows nothing of
// this host's boot partition, ESP or swap; without them a layer boots with
// an empty /boot and nothing can manage its boot entries. For each kind
// running mounts, the layer's own lines of that kind are dropped (they
// name the build machine's devices) and running's are appended; kinds
// running lacks are left as they are. Lines already identical stay where
// they are, so applying it twice changes nothing.
func HostWide(fstab, running []byte) []byte {
	want := map[string][]string{} // key -> running's lines, normalised
	var order []string
	for _, line := range strings.Split(string(running), "\n") {
		f := strings.Fields(line)
		if key, ok := hostWide(f); ok {
			if _, seen := want[key]; !seen {
				order = append(order, key)
			}
			want[key] = append(want[key], strings.Join(f, " "))
		}
	}
	if len(want) == 0 {
		return fstab
	}
	have := map[string]bool{}
	lines := strings.SplitAfter(string(fstab), "\n")
	var out []string
	for _, line := range lines {
		f := strings.Fields(line)
		key, ok := hostWide(f)
		if !ok || want[key] == nil {
			out = append(out, line)
			continue
		}
		norm := strings.Join(f, " ")
		keep := false
		for _, w := range want[key] {
			keep = keep || w == norm
		}
		if keep && !have[norm] {
			have[norm] = true
			out = append(out, line)
		}
	}
	s := strings.Join(out, "")
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	for _, key := range order {
		for _, w := range want[key] {
			if !have[w] {
				have[w] = true
				s += w + "\n"
			}
		}
	}
	return []byte(s)
}
