package host

import (
	"fmt"
	"strings"
)

// mountedDevice reports whether /proc/self/mountinfo data lists a mount of
// the block device major:minor.
func mountedDevice(mountinfo []byte, major, minor int) bool {
	want := fmt.Sprintf("%d:%d", major, minor)
	for _, line := range strings.Split(string(mountinfo), "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[2] == want {
			return true
		}
	}
	return false
}
