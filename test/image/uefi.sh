# Sourced by build.sh: the UEFI variant of the host image (image.sh's is
# BIOS + GRUB). Kept apart from image.sh so that the BIOS image's cache key
# does not depend on it.

OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd
UEFI_PACKAGES="systemd-boot systemd-boot-efi dosfstools"

uefi_image_key() {
	key "$(rootfs_key)" "$(agent_key)" "$HERE/stage.sh" "$HERE/uefi.sh" "$HERE/install-uefi.sh" "$UEFI_PACKAGES"
}
# Not "image-…": publish keeps two builds per name prefix, and the BIOS
# image's prefix must not count these.
uefi_image_dir() { echo "$IMGBASE_CACHE/uefiimage-$(uefi_image_key)"; }

# uefi_debs DIR: the packages the UEFI host adds to the shared root, at the
# root's own systemd version (systemd-boot depends on exactly it).
uefi_debs() {
	local dir=$1 ver
	ver=$(dpkg-query --admindir="$(rootfs_dir)/root/var/lib/dpkg" -W -f='${Version}' systemd)
	mkdir -p "$dir"
	step "uefi image: downloading $UEFI_PACKAGES (systemd $ver)"
	(cd "$dir" && apt-get download -q "systemd-boot=$ver" "systemd-boot-efi=$ver" dosfstools >/dev/null 2>&1) ||
		{ apt-get update -qq >&2 || true; (cd "$dir" && apt-get download -q "systemd-boot=$ver" "systemd-boot-efi=$ver" dosfstools >&2); } ||
		die "cannot download $UEFI_PACKAGES"
}

uefi_image() {
	deps; rootfs; agent
	[ -f "$OVMF_CODE" ] && [ -f "$OVMF_VARS" ] || die "no OVMF firmware in /usr/share/OVMF: run 'build.sh deps' (package ovmf)"
	local out; out=$(uefi_image_dir)
	if [ -f "$out/disk.raw" ]; then step "uefi image: cached $out/disk.raw"; emit_uefi_image; return 0; fi
	local tmp="$out.tmp"
	rm -rf "$tmp"; mkdir -p "$tmp"
	stage "$tmp/stage" 1.0
	uefi_debs "$tmp/debs"
	cp "$tmp"/debs/*.deb "$tmp/stage/tmp/"
	chroot "$tmp/stage" sh -c 'dpkg -i /tmp/*.deb && rm -f /tmp/*.deb' >&2
	install -D -m 0755 "$HERE/install-uefi.sh" "$tmp/stage/usr/local/lib/imgbase-test/install"
	cp "$tmp"/stage/boot/vmlinuz-* "$tmp/vmlinuz"
	cp "$tmp"/stage/boot/initrd.img-* "$tmp/initrd.img"
	step "uefi image: making the root filesystem image"
	mkfs.ext4 -q -F -L root -E root_owner=0:0 -d "$tmp/stage" "$tmp/root.ext4" 3G >&2
	rm -rf "$tmp/stage" "$tmp/debs"
	truncate -s 8G "$tmp/disk.raw.part"
	qemu-img create -q -f qcow2 -F raw -b "$tmp/root.ext4" "$tmp/installer.qcow2"
	step "uefi image: installer guest (GPT, ESP at /boot/efi, /boot, LVM thin pool, root LV, systemd-boot)"
	run_guest "$tmp/install.log" 900 \
		-kernel "$tmp/vmlinuz" -initrd "$tmp/initrd.img" \
		-append "root=/dev/vdb rw init=/usr/local/lib/imgbase-test/install console=ttyS0,115200n8 panic=-1 quiet" \
		-drive "file=$tmp/disk.raw.part,format=raw,if=virtio,cache=unsafe,discard=unmap" \
		-drive "file=$tmp/installer.qcow2,format=qcow2,if=virtio,cache=unsafe" \
		-drive "file=$tmp/root.ext4,format=raw,if=virtio,readonly=on"
	grep -q IMGBASE-INSTALL-OK "$tmp/install.log" || die "installer failed, see $tmp/install.log"
	rm -f "$tmp/installer.qcow2" "$tmp/root.ext4"
	mv "$tmp/disk.raw.part" "$tmp/disk.raw"
	publish "$tmp" "$out"
	step "uefi image: $out/disk.raw ($(du -h "$out/disk.raw" | cut -f1) used)"
	emit_uefi_image
}

emit_uefi_image() {
	echo "IMGBASE_VM_UEFI_DISK=$(uefi_image_dir)/disk.raw"
	echo "IMGBASE_VM_OVMF_CODE=$OVMF_CODE"
	echo "IMGBASE_VM_OVMF_VARS=$OVMF_VARS"
}
