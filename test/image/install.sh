#!/bin/sh
# The installer, run as init of a guest whose root is a copy of the host
# root image (vdb): installs that image (vdc) onto the empty disk vda the
# way anaconda's "autopart --type=thinp" lays out a host.
set -eu
say() { echo "### $*"; }
finish() {
	rc=$?
	[ $rc = 0 ] && echo IMGBASE-INSTALL-OK || echo "IMGBASE-INSTALL-FAILED rc=$rc"
	sync
	echo o >/proc/sysrq-trigger
	sleep 10
}
trap finish EXIT
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sys /sys
mountpoint -q /dev || mount -t devtmpfs dev /dev
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mkdir -p /run/lock /run/lvm /target
say "modules and udev"
modprobe -a virtio_pci virtio_blk dm_thin_pool ext4
/lib/systemd/systemd-udevd --daemon
udevadm trigger
udevadm settle
say "partitions: /boot and the LVM PV"
sfdisk -q /dev/vda <<PARTS
label: dos
start=1MiB, size=512MiB, type=83, bootable
type=8e
PARTS
udevadm settle
mkfs.ext4 -q -F -L boot /dev/vda1
say "LVM: VG HostVG, thin pool pool00, thin LV root"
pvcreate -q -y /dev/vda2
vgcreate -q HostVG /dev/vda2
lvcreate -q -y --type thin-pool -L 6G -n pool00 HostVG
lvcreate -q -y -V 3G -T HostVG/pool00 -n root
udevadm settle
say "root filesystem"
dd if=/dev/vdc of=/dev/HostVG/root bs=4M conv=sparse status=none
tune2fs -U random /dev/HostVG/root >/dev/null
mount /dev/HostVG/root /target
# Kernels live on the /boot partition; the root's /boot is a mountpoint.
rm -rf /target/boot/* /target/usr/local/lib/imgbase-test
mount /dev/vda1 /target/boot
cp -a /boot/vmlinuz-* /boot/initrd.img-* /boot/config-* /boot/System.map-* /target/boot/
say "GRUB (BIOS)"
grub-install -s --target=i386-pc --boot-directory=/target/boot /dev/vda
kver=$(basename /boot/vmlinuz-* | sed 's/^vmlinuz-//')
uuid=$(blkid -s UUID -o value /dev/vda1)
sed -e "s/@KVER@/$kver/g" -e "s/@BOOT_UUID@/$uuid/g" /usr/local/lib/imgbase-test/grub.cfg.in >/target/boot/grub/grub.cfg
grub-editenv /target/boot/grub/grubenv create
fstrim /target || true
umount /target/boot /target
vgchange -q -an HostVG
say "done"
