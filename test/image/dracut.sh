# Sourced by build.sh: the dracut host (issue #14 item 2), the BIOS host
# image of image.sh whose initramfs Debian's dracut makes instead of
# initramfs-tools, and the v2 test image made the same way: the layers an
# update boots on such a host carry the image's own initramfs, so v2 must be
# a dracut OS too for its trial boot to prove anything about dracut.

DRACUT_PACKAGES="dracut dracut-core kpartx"

dracut_image_key() { key "$(image_key)" "$HERE/dracut.sh" "$DRACUT_PACKAGES"; }
# Not "image-…": publish keeps two builds per name prefix, and the BIOS
# image's prefix must not count these.
dracut_image_dir() { echo "$IMGBASE_CACHE/dracutimage-$(dracut_image_key)"; }

dracut_image() {
	deps
	local out; out=$(dracut_image_dir)
	build_image "$out" "dracut image" dracut_root
	[ -f "$out/payload.ext4" ] || dracut_payload "$out"
	emit_dracut_image
}

emit_dracut_image() {
	echo "IMGBASE_VM_DRACUT_DISK=$(dracut_image_dir)/disk.raw"
	echo "IMGBASE_VM_DRACUT_PAYLOAD=$(dracut_image_dir)/payload.ext4"
}

# dracut_payload OUT: OUT/payload.ext4, a payload disk holding v2.img as
# testimages.sh makes it, but a dracut OS.
dracut_payload() {
	local out=$1 tmp=$1/payload.tmp
	rm -rf "$tmp"; mkdir -p "$tmp/files"
	stage "$tmp/stage" 2.0
	dracut_root "$tmp/stage" "$tmp"
	step "dracut image: v2.img (ext4, v2 with dracut)"
	mkext4 "$tmp/stage" "$tmp/files/v2.img" 1000M imgbase-test
	rm -rf "$tmp/stage"
	local size; size=$(du -sm --apparent-size "$tmp/files" | cut -f1)
	mkfs.ext4 -q -F -L payload -E root_owner=0:0 -d "$tmp/files" "$tmp/payload.ext4" "$((size * 11 / 10 + 64))M" >&2
	mv "$tmp/payload.ext4" "$out/payload.ext4"
	rm -rf "$tmp"
}

# dracut_root ROOT TMP: swaps initramfs-tools for dracut in a staged root
# (TMP: scratch space) and has dracut make the root's initramfs, the way an
# admin switches: dracut conflicts with initramfs-tools, and the kernel
# depends on either (linux-initramfs-tool), hence --force-depends for the
# moment between the two.
dracut_root() {
	local root=$1 debs=$2/dracut-debs
	rm -rf "$debs"; mkdir -p "$debs"
	step "dracut: downloading $DRACUT_PACKAGES"
	(cd "$debs" && apt-get download -q $DRACUT_PACKAGES >/dev/null 2>&1) ||
		{ apt-get update -qq >&2 || true; (cd "$debs" && apt-get download -q $DRACUT_PACKAGES >&2); } ||
		die "cannot download $DRACUT_PACKAGES"
	step "dracut: initramfs-tools out, dracut in"
	# Before dracut's package: its postinst makes the initramfs with it.
	# Generic (hostonly=no): dracut runs in a chroot, whose host is the build
	# machine, not the guest. Small, because GRUB reads it through the BIOS
	# (under TCG about a second per MB at every boot), as rootfs.sh's
	# MODULES=list is for initramfs-tools: only the dracut modules a root on
	# a thin LV needs (their dependencies come with them) and only the
	# drivers of a virtio ext4 root (dm adds the device-mapper targets, and
	# a generic lvm module thin_check with the other thin tools).
	mkdir -p "$root/etc/dracut.conf.d"
	cat >"$root/etc/dracut.conf.d/imgbase-test.conf" <<-CONF
	hostonly="no"
	dracutmodules=" systemd-initrd dracut-systemd lvm rootfs-block kernel-modules udev-rules base fs-lib shutdown "
	drivers=" virtio_pci virtio_blk ext4 dm_thin_pool "
	fscks=" e2fsck "
	CONF
	cp "$debs"/*.deb "$root/tmp/"
	mount --bind /proc "$root/proc"
	if ! chroot "$root" sh -c 'dpkg --purge --force-depends initramfs-tools initramfs-tools-core &&
		dpkg -i /tmp/*.deb && rm -f /tmp/*.deb' >&2; then
		umount "$root/proc"
		die "cannot install dracut"
	fi
	umount "$root/proc"
	# rootfs.sh's configuration, which dpkg leaves (not the package's).
	rm -rf "$root/etc/initramfs-tools" "$debs"
	local initrd_files
	initrd_files=$(chroot "$root" sh -c 'lsinitrd /boot/initrd.img-*') || die "lsinitrd failed"
	local want
	for want in 'usr/sbin/thin_check' 'usr/sbin/lvm' '/virtio_blk\.ko' '/ext4\.ko' '/dm-thin-pool\.ko' '^lvm$'; do
		grep -Eq "$want" <<<"$initrd_files" || die "dracut's initramfs lacks $want"
	done
	step "dracut: initramfs $(du -h "$root"/boot/initrd.img-* | cut -f1)"
}
