//go:build vm

package vm

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// kernelChangeInLayer proves #14 item 8 in the running default layer:
// update-initramfs -u (with an initramfs-tools hook adding a marker file,
// and an init-bottom script leaving it in /run) runs the package's
// post-update.d hook, which copies the new initramfs into /boot/<layer>/;
// the other layers' files and every entry stay as they were; update-grub
// exits 0 and the grub.cfg it writes still sources imgbase's menu; the
// reboot boots the layer from its own entry (img.bootid=, BOOT_IMAGE=
// under /<layer>/) with the new initramfs (the marker in /run). One reboot.
func kernelChangeInLayer(t *testing.T, g *Guest, layer string, others []string) {
	t.Helper()
	g.WaitStarted() // imgbase-boot-success.service holds imgbase's lock a while
	if kc := g.MustShell("cat /etc/kernel/cmdline"); !strings.Contains(kc, "root=/dev/"+vg+"/"+layer+" ") ||
		!strings.Contains(kc, "rd.lvm.lv="+vg+"/"+layer+" ") || !strings.Contains(kc, "img.bootid="+layer) {
		t.Errorf("/etc/kernel/cmdline of %s does not name it: %q", layer, kc)
	}
	g.MustShell("test -x /etc/initramfs/post-update.d/imgbase && test -x /etc/kernel/postinst.d/zz-imgbase && test -x /etc/grub.d/15_imgbase")
	// What must not change: the other layers' copies, every entry.
	sums := "cd /boot && sha256sum loader/entries/*.conf"
	for _, o := range others {
		sums += " '" + o + "'/*"
	}
	before := g.MustShell(sums)
	kver := strings.TrimSpace(g.MustShell("uname -r"))
	initrd := "/boot/" + layer + "/initrd.img-" + kver
	oldSum := g.MustShell("sha256sum " + initrd)

	marker := fmt.Sprintf("kernhook-%d", time.Now().UnixNano())
	g.MustShell(`set -e
cat >/etc/initramfs-tools/hooks/imgbase-test-marker <<'END'
#!/bin/sh
[ "$1" = prereqs ] && exit 0
mkdir -p "$DESTDIR/etc"
cp /etc/imgbase-marker "$DESTDIR/etc/imgbase-marker"
END
# The initramfs has no busybox here (klibc, no cp): shell builtins only.
mkdir -p /etc/initramfs-tools/scripts/init-bottom
cat >/etc/initramfs-tools/scripts/init-bottom/imgbase-test-marker <<'END'
#!/bin/sh
[ "$1" = prereqs ] && exit 0
read -r m </etc/imgbase-marker
echo "$m" >/run/imgbase-marker
END
chmod 755 /etc/initramfs-tools/hooks/imgbase-test-marker /etc/initramfs-tools/scripts/init-bottom/imgbase-test-marker
echo ` + marker + ` >/etc/imgbase-marker`)
	out := g.MustShell("update-initramfs -u 2>&1")
	t.Logf("update-initramfs -u:\n%s", out)
	if !strings.Contains(out, layer+" boots kernel "+kver) {
		t.Errorf("update-initramfs -u did not run imgbase's hook to the end:\n%s", out)
	}
	if g.MustShell("sha256sum "+initrd) == oldSum {
		t.Errorf("%s did not change", initrd)
	}
	if r, _ := g.Shell(2*time.Minute, "lsinitramfs "+initrd+` | grep -Eq '^(\./)?etc/imgbase-marker$'`); r.ExitCode != 0 {
		t.Errorf("%s has no etc/imgbase-marker", initrd)
	}
	if after := g.MustShell(sums); after != before {
		t.Errorf("update-initramfs in %s changed other layers' files or entries:\n%s\nwas\n%s", layer, after, before)
	}

	g.serialGrub()
	r, err := g.Shell(10*time.Minute, "update-grub 2>&1")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("update-grub (exit %d):\n%s", r.ExitCode, r.Stdout)
	t.Logf("grub.cfg:\n%s", g.MustShell("cat /boot/grub/grub.cfg"))
	if r.ExitCode != 0 {
		t.Errorf("update-grub in layer %s exited %d", layer, r.ExitCode)
	}
	if n := strings.TrimSpace(g.MustShell("grep -c '^### BEGIN imgbase ###$' /boot/grub/grub.cfg || true")); n != "1" {
		t.Errorf("grub.cfg after update-grub has %s imgbase blocks, want 1", n)
	}
	if c := g.ImgbaseResult("check"); c.ExitCode != 0 {
		t.Errorf("imgbase check after update-grub: exit %d\n%s%s", c.ExitCode, c.Stdout, c.Stderr)
	}

	// A one-shot choice goes through the header update-grub wrote
	// (00_header consumes next_entry) and imgbase's script after it; it
	// also wins over a pending trial.
	g.Imgbase("boot", "--next", layer)
	b := g.Reboot()
	g.ExpectBooted(b, layer, "after update-initramfs and update-grub in "+layer)
	if !strings.Contains(b.Cmdline, "BOOT_IMAGE=/"+layer+"/vmlinuz-") {
		t.Errorf("the boot after update-grub was not from imgbase's entry of %s: %s", layer, b.Cmdline)
	}
	if got := strings.TrimSpace(g.MustShell("cat /run/imgbase-marker 2>/dev/null || true")); got != marker {
		t.Errorf("the boot of %s did not run the new initramfs: /run/imgbase-marker = %q, want %q", layer, got, marker)
	}
}

// serialGrub sets /etc/default/grub as on a headless host with a serial
// console, before anything runs update-grub: the guest has no display, and
// the grub.cfg of a GRUB on its (absent) screen was seen never to boot
// after a reset (the dracut host, after its kernel's postinst had run
// update-grub: the CPU in the BIOS for 12 minutes, nothing on the serial
// line). GRUB on the serial line, as the test image's own grub.cfg has it,
// and the kernels of update-grub's own entries print there too, so that a
// boot of one of them shows in the log.
func (g *Guest) serialGrub() {
	g.t.Helper()
	g.MustShell(`cat >>/etc/default/grub <<'END'
GRUB_TERMINAL=serial
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
GRUB_TIMEOUT=1
GRUB_CMDLINE_LINUX="console=ttyS0,115200n8"
END`)
}
