//go:build vm

// Command demo boots a fresh copy of the test host image and walks through
// imgbase on real LVM: the layout made from the running root, an update to
// the v2 image carrying the admin's changes, the trial boot into it, the
// seeds' commands and a rollback. Run it with `make demo`.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/imgbase/imgbase/test/vm"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	disk := os.Getenv(vm.EnvDisk)
	if disk == "" {
		return fmt.Errorf("%s is not set: run `make demo`", vm.EnvDisk)
	}
	dir, err := os.MkdirTemp("", "imgbase-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	start := time.Now()
	say("booting a fresh copy of %s (%s; a boot takes about a minute under TCG)", disk, vm.Accel())
	m, err := vm.Start(vm.Options{Disk: disk, Payload: os.Getenv(vm.EnvPayload), Accel: vm.Accel(), Dir: dir})
	if err != nil {
		return err
	}
	defer m.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), vm.BootTimeout)
	defer cancel()
	if err := m.Ready(ctx, ""); err != nil {
		return fmt.Errorf("%w (serial log: %s)", err, m.SerialLog())
	}
	say("booted in %s", time.Since(start).Round(time.Second))
	pkg, err := vm.OpenPackage(os.Getenv(vm.EnvDeb))
	if err != nil {
		return err
	}
	say("installing %s with dpkg -i", pkg.Path)
	if err := m.InstallPackage(pkg); err != nil {
		return err
	}
	d := demo{m: m}
	d.sh("dpkg-query -W imgbase; systemctl is-enabled imgbase-boot-success.service imgbase-recover.service")
	d.sh("findmnt -no SOURCE / ; cat /usr/share/imgbase/build/meta/nvr")
	d.sh("lvs -o lv_name,lv_tags,origin,lv_attr,lv_size HostVG")
	d.expectFail("imgbase layout") // nothing to show before --init
	d.sh("imgbase layout --init")
	d.sh("imgbase layout")

	if err := d.reboot("rebooting into the first layer"); err != nil {
		return err
	}
	d.sh("findmnt -no SOURCE /; imgbase layer --current")
	// The admin's changes that the update must carry to the new base.
	d.sh(`echo 'Welcome, set by the admin' >>/etc/motd; useradd -u 4321 -M -s /bin/sh operator2; rm /etc/issue.net`)
	say("making v2 an image that carries the imgbase package, as a vendor's image build would")
	if err := m.PackagedImage(pkg, "/mnt/payload/v2.img", "/var/tmp/v2.img"); err != nil {
		return err
	}
	d.sh("imgbase --dry update /var/tmp/v2.img")
	d.sh("imgbase update /var/tmp/v2.img && rm /var/tmp/v2.img")
	d.sh("imgbase layout; imgbase boot --status")

	if err := d.reboot("rebooting: the new layer is tried once"); err != nil {
		return err
	}
	d.sh("findmnt -no SOURCE /; cat /usr/share/imgbase-test/version")
	d.sh(`tail -n1 /etc/motd; id operator2; test ! -e /etc/issue.net && echo "/etc/issue.net stays deleted"`)
	d.sh("systemctl is-system-running --wait >/dev/null || true; systemctl is-active imgbase-boot-success.service && imgbase boot --status")
	d.sh("systemctl show -p FragmentPath imgbase-boot-success.service; command -v imgbase") // the image's own, from its package

	// The seeds' commands on the updated host.
	d.sh("imgbase base --latest")
	d.sh("imgbase layer --add")
	d.sh("imgbase --debug layer --add")
	d.sh("imgbase layout")
	d.sh("lvs -o lv_name,lv_tags,origin,lv_attr,lv_size HostVG")
	d.sh("grub-editenv /boot/grub/grubenv list; ls /boot/loader/entries 2>/dev/null || true")
	if err := d.reboot("rebooting into the default entry"); err != nil {
		return err
	}
	// / must be the layer the demo added last: the trial boot of the
	// newest layer of the newest base.
	d.sh(`want=$(imgbase layer --latest) && cur=$(imgbase layer --current) && echo "booted $cur, added $want" && [ "$cur" = "$want" ]`)
	d.sh("systemctl is-system-running --wait >/dev/null || true; systemctl is-active imgbase-boot-success.service && imgbase boot --status")
	d.sh("imgbase rollback; imgbase boot --get-default")
	d.sh("imgbase layout")
	say("done in %s", time.Since(start).Round(time.Second))
	if d.failed > 0 {
		return fmt.Errorf("%d command(s) did not do what was expected", d.failed)
	}
	return nil
}

type demo struct {
	m      *vm.Machine
	failed int
}

// reboot says why, restarts the guest and waits until its agent answers.
func (d *demo) reboot(why string) error {
	say("%s", why)
	ctx, cancel := context.WithTimeout(context.Background(), vm.BootTimeout)
	defer cancel()
	if err := d.m.Reboot(ctx); err != nil {
		return fmt.Errorf("%w (serial log: %s)", err, d.m.SerialLog())
	}
	if err := d.m.Ready(ctx, ""); err != nil {
		return fmt.Errorf("%w (serial log: %s)", err, d.m.SerialLog())
	}
	return nil
}

func (d *demo) sh(line string) {
	if !d.run(line) {
		d.failed++
	}
}

// expectFail runs a command that is meant to fail at this point.
func (d *demo) expectFail(line string) {
	if d.run(line) {
		d.failed++
		fmt.Println("=> succeeded, but was expected to fail")
	}
}

func (d *demo) run(line string) bool {
	fmt.Printf("\n# %s\n", line)
	r, err := d.m.Shell(10*time.Minute, line)
	os.Stdout.WriteString(r.Stdout)
	os.Stdout.WriteString(indent(r.Stderr))
	if err != nil || r.ExitCode != 0 {
		fmt.Printf("=> exit %d %v\n", r.ExitCode, orEmpty(err))
		return false
	}
	return true
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ") + "\n"
}

func orEmpty(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func say(format string, args ...any) {
	fmt.Printf("==> "+format+"\n", args...)
}
