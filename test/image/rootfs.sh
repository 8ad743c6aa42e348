#!/bin/bash
# rootfs.sh OUT: debootstrap the Debian root shared by the host image and
# the test OS images into OUT/root, and fetch OUT/debs (packages that only
# later test versions install).
source "$(dirname "$0")/lib.sh"
out=$1
root=$out/root
mkdir -p "$out/debs"
pkgs=$(grep -v '^#' "$HERE/packages.txt" | xargs | tr ' ' ,)
# A finished debootstrap in OUT (a build interrupted later) is reused.
if ! grep -qs 'Base system installed successfully' "$out/debootstrap.log"; then
	step "rootfs: debootstrap $DEBIAN_SUITE (minbase + kernel, lvm2, grub-pc, systemd)"
	rm -rf "$root"
	debootstrap --variant=minbase --include="$pkgs" "$DEBIAN_SUITE" "$root" "$DEBIAN_MIRROR" \
		>"$out/debootstrap.log" 2>&1 || { tail -20 "$out/debootstrap.log" >&2; die "debootstrap failed"; }
fi
step "rootfs: configuring"
# A small initramfs: GRUB reads it through the BIOS, which under TCG costs
# about a second per MB at every boot. The lvm2 and thin-provisioning-tools
# hooks add their dm modules themselves.
cat >"$root/etc/initramfs-tools/conf.d/imgbase-test.conf" <<CONF
MODULES=list
CONF
# What the modules file lists is loaded at every boot (under TCG, xfs and
# the SCSI core cost ~12 s of a loaded boot); the rest is only included, and
# the kernel loads it when asked (mount -t xfs of an XFS root).
printf '%s\n' virtio_pci virtio_blk ext4 >>"$root/etc/initramfs-tools/modules"
cat >"$root/etc/initramfs-tools/hooks/imgbase-test-modules" <<'HOOK'
#!/bin/sh
[ "$1" = prereqs ] && exit 0
. /usr/share/initramfs-tools/hook-functions
manual_add_modules xfs squashfs loop
HOOK
chmod 755 "$root/etc/initramfs-tools/hooks/imgbase-test-modules"
mount --bind /proc "$root/proc"
chroot "$root" update-initramfs -u -k all >&2 || { umount "$root/proc"; die "update-initramfs failed"; }
umount "$root/proc"
# lsinitramfs must show thin_check, or layers on a thin pool cannot boot.
initrd_files=$(chroot "$root" sh -c "lsinitramfs /boot/initrd.img-*")
grep -q 'sbin/thin_check$' <<<"$initrd_files" || die "initramfs lacks thin_check"
grep -q '/xfs\.ko$' <<<"$initrd_files" || die "initramfs lacks xfs.ko"
chroot "$root" passwd -d root >/dev/null
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
echo 'LANG=C.UTF-8' >"$root/etc/default/locale"
# Keep the images small: no documentation, no package caches.
rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
	"$root"/usr/share/locale/* "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
step "rootfs: downloading packages for later test versions"
(cd "$out/debs" && apt-get download hello >/dev/null 2>&1) || die "cannot download hello"
step "rootfs: $(du -sh "$root" | cut -f1) in $root"
