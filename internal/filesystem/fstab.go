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
