package lvm

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Autoextend is lvm.conf's policy for growing thin pools: when a pool's
// data or metadata use crosses Threshold percent, dmeventd extends it by
// Percent percent from the volume group's free extents.
type Autoextend struct {
	Threshold, Percent int
}

// Enabled reports whether the policy grows pools at all (lvm2 reads a
// threshold of 100 or more as "never").
func (a Autoextend) Enabled() bool { return a.Threshold > 0 && a.Threshold < 100 && a.Percent > 0 }

// ReadAutoextend reads the thin-pool autoextend policy from the lvm2
// configuration under root: etc/lvm/lvm.conf, then etc/lvm/lvmlocal.conf,
// which overrides it, as lvm2 merges them. It reads the files instead of
// running lvmconfig: an LVM process costs up to seconds on a slow host,
// and only these two keys of the "activation" section matter. Missing
// files or keys leave lvm2's defaults (threshold 100: off; 20 %).
func ReadAutoextend(root string) Autoextend {
	a := Autoextend{Threshold: 100, Percent: 20}
	for _, name := range []string{"lvm.conf", "lvmlocal.conf"} {
		data, err := os.ReadFile(filepath.Join(root, "etc/lvm", name))
		if err != nil {
			continue
		}
		vals := activationInts(data)
		if v, ok := vals["thin_pool_autoextend_threshold"]; ok {
			a.Threshold = v
		}
		if v, ok := vals["thin_pool_autoextend_percent"]; ok {
			a.Percent = v
		}
	}
	return a
}

// activationInts returns the integer settings of the top-level
// "activation" section of an lvm2 configuration file.
func activationInts(data []byte) map[string]int {
	out := map[string]int{}
	var stack []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case strings.HasSuffix(line, "{"):
			stack = append(stack, strings.TrimSpace(strings.TrimSuffix(line, "{")))
		case line == "}":
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case len(stack) == 1 && stack[0] == "activation":
			key, val, ok := strings.Cut(line, "=")
			if !ok {
				continue
			}
			if n, err := strconv.Atoi(strings.TrimSpace(val)); err == nil {
				out[strings.TrimSpace(key)] = n
			}
		}
	}
	return out
}
