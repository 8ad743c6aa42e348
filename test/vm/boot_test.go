//go:build vm

package vm

import (
	"strings"
	"testing"
)

// The means for #4: after `imgbase layout --init` the guest boots into the
// first layer (BootLayered's preparation rebooted after the init; this is
// that layer's second boot), and a grubenv choice picks another entry (the
// host's own root: two boots). Then kernelChangeInLayer: one more boot.
// make check-long only: with it make test took 55 minutes on CI's two
// cores, and its kernel change (#14 item 8, some 8 minutes of a guest
// slot) is proven in check-long twice, here and on the dracut host.
func TestBootIntoLayer(t *testing.T) {
	LongOnly(t, "about 8 minutes beside another guest")
	Parallel(t)
	g := BootLayered(t)
	layer := FirstLayer

	b := g.Booted()
	if b.LV != vg+"/"+layer {
		t.Errorf("after layout --init booted %q (%s), want %s/%s", b.LV, b.Cmdline, vg, layer)
	}
	if !strings.Contains(b.Cmdline, "img.bootid="+layer) {
		t.Errorf("cmdline %q lacks img.bootid=%s", b.Cmdline, layer)
	}

	b = g.BootInto("root", true)
	if b.LV != vg+"/root" {
		t.Errorf("next_entry=root booted %q (%s), want %s/root", b.LV, b.Cmdline, vg)
	}
	b = g.Reboot()
	if b.LV != vg+"/"+layer {
		t.Errorf("next_entry is one-shot, but the boot after it was %q (%s), want %s/%s", b.LV, b.Cmdline, vg, layer)
	}

	// #14 item 8: a kernel change inside the layer, another layer beside
	// it whose files must not change.
	g.WaitStarted()
	g.Imgbase("layer", "--add")
	kernelChangeInLayer(t, g, layer, []string{nvr1 + "+2"})
}
