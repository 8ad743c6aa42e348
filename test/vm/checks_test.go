//go:build vm

package vm

import (
	"fmt"
	"strings"
	"testing"
)

// checkInitTags checks what `imgbase layout --init` must tag.
func checkInitTags(t *testing.T, g *Guest, lvs map[string]LV) {
	t.Helper()
	if tags := g.VGTags(vg); !contains(tags, "imgbased:vg") {
		t.Errorf("VG %s tags %v, want imgbased:vg", vg, tags)
	}
	if !lvs["pool00"].HasTag("imgbased:pool") {
		t.Errorf("pool00 tags %q, want imgbased:pool", lvs["pool00"].TagList)
	}
	if !lvs["root"].HasTag("imgbased:init") {
		t.Errorf("root tags %q, want imgbased:init", lvs["root"].TagList)
	}
}

// checkBase checks a base: a read-only thin LV in pool00, activation skip
// on, inactive, tagged imgbased:base.
func checkBase(t *testing.T, lvs map[string]LV, name string) {
	t.Helper()
	lv, ok := lvs[name]
	if !ok {
		t.Errorf("no LV %s; LVs: %s", name, names(lvs))
		return
	}
	if !lv.HasTag("imgbased:base") {
		t.Errorf("base %s tags %q, want imgbased:base", name, lv.TagList)
	}
	if lv.Segtype != "thin" || lv.Pool != "pool00" {
		t.Errorf("base %s is %s in %q, want a thin LV in pool00", name, lv.Segtype, lv.Pool)
	}
	if !lv.ReadOnly() {
		t.Errorf("base %s attr %s: not read-only", name, lv.Attr)
	}
	if !lv.SkipActivation() {
		t.Errorf("base %s attr %s: activation skip not set", name, lv.Attr)
	}
	if lv.Active() {
		t.Errorf("base %s attr %s: active", name, lv.Attr)
	}
}

// checkLayer checks a layer: a writable thin snapshot of base (or of one
// of base's layers), tagged imgbased:layer, activation skip off, active.
func checkLayer(t *testing.T, lvs map[string]LV, name, base string) {
	t.Helper()
	lv, ok := lvs[name]
	if !ok {
		t.Errorf("no LV %s; LVs: %s", name, names(lvs))
		return
	}
	if !strings.HasPrefix(name, base+"+") {
		t.Errorf("layer %s is not named %s+<N>", name, base)
	}
	if !lv.HasTag("imgbased:layer") {
		t.Errorf("layer %s tags %q, want imgbased:layer", name, lv.TagList)
	}
	if lv.Segtype != "thin" || lv.Pool != "pool00" {
		t.Errorf("layer %s is %s in %q, want a thin LV in pool00", name, lv.Segtype, lv.Pool)
	}
	if lv.Origin != base && !strings.HasPrefix(lv.Origin, base+"+") {
		t.Errorf("layer %s has origin %q, want %s or one of its layers", name, lv.Origin, base)
	}
	if lv.ReadOnly() {
		t.Errorf("layer %s attr %s: read-only", name, lv.Attr)
	}
	if lv.SkipActivation() {
		t.Errorf("layer %s attr %s: activation skip set", name, lv.Attr)
	}
	if !lv.Active() {
		t.Errorf("layer %s attr %s: not active", name, lv.Attr)
	}
}

// checkLayerFS checks a layer's filesystem: a UUID of its own, and an
// fstab that mounts the layer as / with discard.
func checkLayerFS(t *testing.T, g *Guest, layer string, otherUUIDs map[string]string) string {
	t.Helper()
	dev := "/dev/" + vg + "/" + layer
	uuid := strings.TrimSpace(g.MustRun("blkid", "-s", "UUID", "-o", "value", dev))
	if uuid == "" {
		t.Errorf("layer %s has no filesystem UUID", layer)
	}
	for other, u := range otherUUIDs {
		if other != layer && u == uuid {
			t.Errorf("layer %s has the filesystem UUID %s of %s", layer, uuid, other)
		}
	}
	fstab := g.LayerFile(layer, "etc/fstab")
	if err := fstabRoot(fstab, layer); err != nil {
		t.Errorf("layer %s: %v\n%s", layer, err, fstab)
	}
	return uuid
}

// fstabRoot checks that fstab mounts the layer's LV as / with discard.
func fstabRoot(fstab, layer string) error {
	want := []string{
		"/dev/" + vg + "/" + layer,
		"/dev/mapper/" + strings.ReplaceAll(vg, "-", "--") + "-" + strings.ReplaceAll(layer, "-", "--"),
	}
	for _, line := range strings.Split(fstab, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || strings.HasPrefix(f[0], "#") || f[1] != "/" {
			continue
		}
		if !contains(want, f[0]) {
			return fmt.Errorf("fstab mounts %s as /, want %s", f[0], want[0])
		}
		if !contains(strings.Split(f[3], ","), "discard") {
			return fmt.Errorf("fstab mounts / with %q, want discard", f[3])
		}
		return nil
	}
	return fmt.Errorf("fstab has no / entry")
}

// LayerFile reads a file of a layer that is not running, mounted read-only.
func (g *Guest) LayerFile(layer, path string) string {
	g.t.Helper()
	mnt := "/run/imgbase-test/" + layer
	return g.MustShell(fmt.Sprintf("o=ro,noload; [ \"$(blkid -o value -s TYPE /dev/%[2]s/'%[3]s')\" = xfs ] && o=ro,norecovery,nouuid; "+
		"mkdir -p '%[1]s' && mount -o $o /dev/%[2]s/'%[3]s' '%[1]s' && "+
		"{ cat '%[1]s/%[4]s'; rc=$?; umount '%[1]s'; exit $rc; }", mnt, vg, layer, path))
}

// BaseUUID reads the filesystem UUID of an inactive base, activating it
// read-only for the moment (-K overrides activation skip).
func (g *Guest) BaseUUID(base string) string {
	g.t.Helper()
	return strings.TrimSpace(g.MustShell(fmt.Sprintf("lvchange -ay -K %[1]s/'%[2]s' && "+
		"{ blkid -s UUID -o value /dev/%[1]s/'%[2]s'; lvchange -an %[1]s/'%[2]s'; }", vg, base)))
}

// layersOf returns the layers of base.
func layersOf(lvs map[string]LV, base string) []string {
	var out []string
	for name, lv := range lvs {
		if strings.HasPrefix(name, base+"+") || (lv.HasTag("imgbased:layer") && lv.Origin == base) {
			out = append(out, name)
		}
	}
	return out
}

// added returns the LVs in after that are not in before.
func added(before, after map[string]LV) []string {
	var out []string
	for name := range after {
		if _, ok := before[name]; !ok {
			out = append(out, name)
		}
	}
	return out
}

func names(lvs map[string]LV) string {
	var n []string
	for k, lv := range lvs {
		n = append(n, fmt.Sprintf("%s(%s %s %s)", k, lv.Attr, lv.TagList, lv.Origin))
	}
	return strings.Join(n, " ")
}

func TestFstabRoot(t *testing.T) {
	ok := "/dev/HostVG/Base-1-0+1 / ext4 defaults,discard 0 1\nLABEL=boot /boot ext4 defaults 0 2\n"
	if err := fstabRoot(ok, "Base-1-0+1"); err != nil {
		t.Error(err)
	}
	mapper := "/dev/mapper/HostVG-Base--1--0+1 / ext4 discard 0 1\n"
	if err := fstabRoot(mapper, "Base-1-0+1"); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{
		"/dev/HostVG/root / ext4 defaults,discard 0 1\n",
		"/dev/HostVG/Base-1-0+1 / ext4 defaults 0 1\n",
		"LABEL=boot /boot ext4 defaults 0 2\n",
	} {
		if err := fstabRoot(bad, "Base-1-0+1"); err == nil {
			t.Errorf("fstab %q accepted", bad)
		}
	}
}
