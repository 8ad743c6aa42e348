#!/bin/sh
# The UEFI installer, run as init of a guest whose root is a copy of the
# host root image (vdb): installs that image (vdc) onto the empty disk vda
# as install.sh does, but as Debian's installer lays out a UEFI host: GPT,
# the ESP (FAT32) at /boot/efi, /boot ext4, booted by systemd-boot
# (bootctl install --no-variables: OVMF finds it by the fallback path
# \EFI\BOOT\BOOTX64.EFI).
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
say "partitions: ESP, /boot and the LVM PV (GPT)"
sfdisk -q /dev/vda <<PARTS
label: gpt
start=1MiB, size=256MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=ESP
size=512MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=boot
type=E6D6D379-F507-44C2-A23C-238F2A3DF928
PARTS
udevadm settle
modprobe -a vfat nls_cp437 nls_ascii
mkfs.vfat -F 32 -n ESP /dev/vda1 >/dev/null
ESP=/dev/vda1 BOOT=/dev/vda2 PV=/dev/vda3
udevadm settle
mkfs.ext4 -q -F -L boot $BOOT
say "LVM: VG HostVG, thin pool pool00, thin LV root"
pvcreate -q -y $PV
vgcreate -q HostVG $PV
lvcreate -q -y --type thin-pool -L 6G -n pool00 HostVG
lvcreate -q -y -V 3G -T HostVG/pool00 -n root
udevadm settle
say "root filesystem"
dd if=/dev/vdc of=/dev/HostVG/root bs=4M conv=sparse status=none
tune2fs -U random /dev/HostVG/root >/dev/null
mount /dev/HostVG/root /target
# Kernels live on the /boot partition; the root's /boot is a mountpoint.
rm -rf /target/boot/* /target/usr/local/lib/imgbase-test
mount $BOOT /target/boot
cp -a /boot/vmlinuz-* /boot/initrd.img-* /boot/config-* /boot/System.map-* /target/boot/
kver=$(basename /boot/vmlinuz-* | sed 's/^vmlinuz-//')
say "systemd-boot on the ESP at /boot/efi"
mkdir -p /target/boot/efi
mount -t vfat $ESP /target/boot/efi
echo "UUID=$(blkid -s UUID -o value $ESP) /boot/efi vfat umask=0077 0 1" >>/target/etc/fstab
bootctl install --no-variables --esp-path=/target/boot/efi
# systemd-boot reads only the ESP (and XBOOTLDR): the first entry's
# kernel goes there, as kernel-install would put it.
mkdir -p /target/boot/efi/root /target/boot/efi/loader/entries
cp /boot/vmlinuz-$kver /boot/initrd.img-$kver /target/boot/efi/root/
cat >/target/boot/efi/loader/entries/root.conf <<ENTRY
title Debian GNU/Linux (HostVG/root)
linux /root/vmlinuz-$kver
initrd /root/initrd.img-$kver
options root=/dev/HostVG/root rd.lvm.lv=HostVG/root ro console=ttyS0,115200n8
ENTRY
printf 'timeout 0\ndefault root.conf\n' >/target/boot/efi/loader/loader.conf
ls -R /target/boot/efi | sed 's/^/### esp: /'
umount /target/boot/efi
fstrim /target || true
umount /target/boot /target
vgchange -q -an HostVG
say "done"
