// Package size reads the sizes admins type (--size 1G) the way lvm2 does:
// binary units, an optional B or iB suffix.
package size

import (
	"fmt"
	"strconv"
	"strings"
)

// Parse reads a size such as 1G, 512M, 10GiB, 4096 or 4096b into bytes.
// A bare number is bytes.
func Parse(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	lower := strings.ToLower(t)
	lower = strings.TrimSuffix(lower, "ib")
	if len(lower) > 1 {
		lower = strings.TrimSuffix(lower, "b")
	}
	mult := uint64(1)
	if n := len(lower); n > 0 {
		switch lower[n-1] {
		case 'k':
			mult = 1 << 10
		case 'm':
			mult = 1 << 20
		case 'g':
			mult = 1 << 30
		case 't':
			mult = 1 << 40
		}
		if mult > 1 || lower[n-1] == 'b' {
			lower = lower[:n-1]
		}
	}
	if lower == "" {
		return 0, fmt.Errorf("cannot read size %q: use a number with an optional unit, e.g. 1G", s)
	}
	f, err := strconv.ParseFloat(lower, 64)
	if err != nil || f <= 0 || f*float64(mult) >= 1<<63 {
		return 0, fmt.Errorf("cannot read size %q: use a positive number with an optional unit (K, M, G, T), e.g. 1G", s)
	}
	return uint64(f * float64(mult)), nil
}
