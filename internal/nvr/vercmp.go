package nvr

// VerCmp compares two version (or release) strings the way rpm's
// rpmvercmp does, and returns -1, 0 or 1.
//
// It follows rpm 4.15+ exactly, because oVirt Node images are versioned
// by RPM tooling and an admin expects the order dnf shows:
//   - the strings are split into maximal runs of ASCII digits or ASCII
//     letters; every other byte except '~' and '^' only separates runs and
//     is otherwise ignored (so "1.0" == "1_0");
//   - '~' sorts before everything, even the end of the string
//     ("1.0~rc1" < "1.0");
//   - '^' sorts after the end of the string but before anything else
//     ("1.0" < "1.0^git1" < "1.0.1");
//   - a numeric run beats an alphabetic one; numeric runs compare as
//     numbers of any length (leading zeros ignored), alphabetic ones
//     bytewise;
//   - when all runs are equal, the string with runs left over is newer.
//
// Two different strings can compare equal ("1.0" and "1_0", "10.0001"
// and "10.1"), exactly as in rpm.
func VerCmp(a, b string) int {
	if a == b {
		return 0
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for i < len(a) && !isAlnum(a[i]) && a[i] != '~' && a[i] != '^' {
			i++
		}
		for j < len(b) && !isAlnum(b[j]) && b[j] != '~' && b[j] != '^' {
			j++
		}

		// '~' sorts before everything, including the end.
		if at(a, i) == '~' || at(b, j) == '~' {
			if at(a, i) != '~' {
				return 1
			}
			if at(b, j) != '~' {
				return -1
			}
			i++
			j++
			continue
		}

		// '^' is like '~' except that the end of a string sorts before it.
		if at(a, i) == '^' || at(b, j) == '^' {
			if i == len(a) {
				return -1
			}
			if j == len(b) {
				return 1
			}
			if a[i] != '^' {
				return 1
			}
			if b[j] != '^' {
				return -1
			}
			i++
			j++
			continue
		}

		if i == len(a) || j == len(b) {
			break
		}

		isNum := isDigit(a[i])
		ei, ej := i, j
		if isNum {
			for ei < len(a) && isDigit(a[ei]) {
				ei++
			}
			for ej < len(b) && isDigit(b[ej]) {
				ej++
			}
		} else {
			for ei < len(a) && isAlpha(a[ei]) {
				ei++
			}
			for ej < len(b) && isAlpha(b[ej]) {
				ej++
			}
		}
		// b's run is of the other kind (empty in this kind): a numeric
		// run is newer than an alphabetic one.
		if ej == j {
			if isNum {
				return 1
			}
			return -1
		}

		sa, sb := a[i:ei], b[j:ej]
		if isNum {
			sa, sb = trimZeros(sa), trimZeros(sb)
			if len(sa) != len(sb) {
				if len(sa) > len(sb) {
					return 1
				}
				return -1
			}
		}
		if sa != sb {
			if sa < sb {
				return -1
			}
			return 1
		}
		i, j = ei, ej
	}
	// All runs equal; only separators may differ.
	switch {
	case i == len(a) && j == len(b):
		return 0
	case i == len(a):
		return -1
	default:
		return 1
	}
}

// at returns s[i], or 0 past the end (rpm reads the terminating NUL).
func at(s string, i int) byte {
	if i < len(s) {
		return s[i]
	}
	return 0
}

func trimZeros(s string) string {
	for len(s) > 0 && s[0] == '0' {
		s = s[1:]
	}
	return s
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isAlnum(c byte) bool { return isDigit(c) || isAlpha(c) }
