//go:build vm

package vm

import (
	"encoding/json"
	"sort"
	"strings"
)

// vg is the volume group of the test host image.
const vg = "HostVG"

// LV is one row of lvm2's own lvs report: tests check imgbase's work with
// it, never with imgbase.
type LV struct {
	VG      string `json:"vg_name"`
	Name    string `json:"lv_name"`
	TagList string `json:"lv_tags"`
	Origin  string `json:"origin"`
	Attr    string `json:"lv_attr"`
	Pool    string `json:"pool_lv"`
	Segtype string `json:"segtype"`
	Size    string `json:"lv_size"`
}

// Tags returns the LV's tags.
func (l LV) Tags() []string { return splitTags(l.TagList) }

// HasTag says whether the LV carries tag.
func (l LV) HasTag(tag string) bool { return contains(l.Tags(), tag) }

// attr returns lv_attr's character i, or 0.
func (l LV) attr(i int) byte {
	if i < len(l.Attr) {
		return l.Attr[i]
	}
	return 0
}

func (l LV) ReadOnly() bool       { return l.attr(1) == 'r' || l.attr(1) == 'R' }
func (l LV) Active() bool         { return l.attr(4) == 'a' }
func (l LV) SkipActivation() bool { return l.attr(9) == 'k' }

// LVs returns every LV (hidden ones included) by name.
func (g *Guest) LVs() map[string]LV {
	g.t.Helper()
	out := g.MustRun("lvs", "-a", "--reportformat", "json", "--units", "b",
		"-o", "vg_name,lv_name,lv_tags,origin,lv_attr,pool_lv,segtype,lv_size")
	var rep struct {
		Report []struct {
			LV []LV `json:"lv"`
		} `json:"report"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		g.t.Fatalf("cannot parse lvs report: %v\n%s", err, out)
	}
	lvs := map[string]LV{}
	for _, r := range rep.Report {
		for _, lv := range r.LV {
			lvs[lv.Name] = lv
		}
	}
	return lvs
}

// VGTags returns the tags of vg.
func (g *Guest) VGTags(vg string) []string {
	g.t.Helper()
	return splitTags(g.MustRun("vgs", "--noheadings", "-o", "vg_tags", vg))
}

// Snapshot is a text report of everything a dry run must leave alone: the
// LVs with their tags, origins and attributes, the VG tags, the files
// under /boot and the GRUB environment.
func (g *Guest) Snapshot() string {
	g.t.Helper()
	return g.MustShell("lvs -a -o lv_name,lv_tags,origin,lv_attr,lv_size,pool_lv --units b; " +
		"vgs -o vg_name,vg_tags; find /boot -printf '%p %s %T@\\n' | sort; grub-editenv /boot/grub/grubenv list; " +
		"blkid -s UUID -o export /dev/HostVG/* 2>/dev/null; ls -l /etc/fstab")
}

func splitTags(s string) []string {
	var tags []string
	for _, t := range strings.Split(strings.TrimSpace(s), ",") {
		if t = strings.TrimSpace(t); t != "" {
			tags = append(tags, t)
		}
	}
	sort.Strings(tags)
	return tags
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
