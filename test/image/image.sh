# Sourced by build.sh.

image_key() { key "$(rootfs_key)" "$(agent_key)" "$HERE/stage.sh" "$HERE/image.sh" "$HERE/install.sh" "$HERE/grub.cfg.in"; }
image_dir() { echo "$IMGBASE_CACHE/image-$(image_key)"; }

image() {
	build_image "$(image_dir)" image
	emit_image
}

# build_image OUT WHAT [PREPARE]: the BIOS host disk image OUT/disk.raw (with
# OUT/vmlinuz and OUT/initrd.img, the kernel the installer guest ran), unless
# built already; WHAT names it in progress lines. PREPARE, if given, is run
# as "PREPARE ROOT TMP" on the staged root before it becomes the root image
# (dracut.sh swaps initramfs-tools for dracut there). The installer guest
# boots the initramfs the stage had before PREPARE: it only runs install.sh,
# which copies whatever the root's /boot holds then.
build_image() {
	local out=$1 what=$2 prepare=${3:-}
	rootfs; agent
	if [ -f "$out/disk.raw" ]; then step "$what: cached $out/disk.raw"; return 0; fi
	local tmp="$out.tmp"
	rm -rf "$tmp"; mkdir -p "$tmp"
	stage "$tmp/stage" 1.0
	install -D -m 0755 "$HERE/install.sh" "$tmp/stage/usr/local/lib/imgbase-test/install"
	install -D -m 0644 "$HERE/grub.cfg.in" "$tmp/stage/usr/local/lib/imgbase-test/grub.cfg.in"
	cp "$tmp"/stage/boot/vmlinuz-* "$tmp/vmlinuz"
	cp "$tmp"/stage/boot/initrd.img-* "$tmp/initrd.img"
	[ -z "$prepare" ] || "$prepare" "$tmp/stage" "$tmp"
	step "$what: making the root filesystem image"
	# Without metadata_csum_seed, as most installed hosts' roots are made
	# (the OS images have it): imgbase must cope, and make bench measures
	# layer --add on a base of this root.
	mkfs.ext4 -q -F -L root -E root_owner=0:0 -d "$tmp/stage" "$tmp/root.ext4" 3G >&2
	rm -rf "$tmp/stage"
	truncate -s 8G "$tmp/disk.raw.part"
	qemu-img create -q -f qcow2 -F raw -b "$tmp/root.ext4" "$tmp/installer.qcow2"
	step "$what: installer guest (partition, LVM thin pool, root LV, GRUB)"
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
	step "$what: $out/disk.raw ($(du -h --apparent-size "$out/disk.raw" | cut -f1) apparent, $(du -h "$out/disk.raw" | cut -f1) used)"
}

emit_image() {
	local out; out=$(image_dir)
	echo "IMGBASE_VM_DISK=$out/disk.raw"
	echo "IMGBASE_VM_KERNEL=$out/vmlinuz"
	echo "IMGBASE_VM_INITRD=$out/initrd.img"
}

# run_guest LOG TIMEOUT QEMU-ARGS...: a finite guest; prints its "### "
# progress lines with elapsed time, fails on timeout.
run_guest() {
	local log=$1 timeout=$2; shift 2
	: >"$log"
	qemu-system-x86_64 -accel tcg -m 2048 -smp 2 -display none -monitor none \
		-serial "file:$log" -no-reboot "$@" &
	local pid=$! seen=0 waited=0 n
	while kill -0 "$pid" 2>/dev/null; do
		sleep 1; waited=$((waited + 1))
		n=$(grep -c '^### ' "$log" || true)
		if [ "$n" -gt "$seen" ]; then
			grep '^### ' "$log" | tail -n +$((seen + 1)) | tr -d '\r' | while read -r l; do step "  guest: ${l#\#\#\# }"; done
			seen=$n
		fi
		if [ "$waited" -ge "$timeout" ]; then
			kill "$pid"; wait "$pid" || true
			die "guest timed out after ${timeout}s, see $log"
		fi
	done
	wait "$pid" || die "qemu failed, see $log"
}

squash() {
	rootfs; agent; image >/dev/null
	local out; out="$IMGBASE_CACHE/runtime-layout-$(image_key).squash"
	if [ ! -f "$out" ]; then
		local tmp="$out.d"
		rm -rf "$tmp"
		stage "$tmp" 1.0
		rm -rf "$tmp"/boot/*
		step "squash: mksquashfs of the host root"
		mksquashfs "$tmp" "$out.tmp" -noappend -quiet -no-progress $SQUASH_OPTS >&2
		rm -rf "$tmp"; mv "$out.tmp" "$out"
	fi
	local disk; disk="$(image_dir)/disk.raw"
	printf '%-28s %8s %8s\n' "" apparent used
	printf '%-28s %8s %8s\n' "disk image (raw)" "$(du -h --apparent-size "$disk" | cut -f1)" "$(du -h "$disk" | cut -f1)"
	printf '%-28s %8s %8s\n' "runtime-layout.squash" "$(du -h --apparent-size "$out" | cut -f1)" "$(du -h "$out" | cut -f1)"
	echo "runtime-layout.squash: $out"
}

