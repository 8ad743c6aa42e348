#!/bin/bash
# build.sh TARGET — builds the VM test artefacts into $IMGBASE_CACHE, each
# keyed by a hash of its inputs so that an unchanged input is never rebuilt.
#   deps        install the host tools (apt-get) when missing
#   rootfs      debootstrap the Debian root shared by every image
#   agent       the static guest agent (test/vm/agent)
#   image       the host disk image (thin LVM, GRUB); prints its path
#   testimages  v1/v2 OS images (raw ext4 + squashfs) and the payload disk
#   squash      runtime-layout.squash, size printed beside the raw image's
#   all         image and testimages
# Each target prints KEY=path lines on stdout for the harness (env.sh).
source "$(dirname "$0")/lib.sh"

HOST_TOOLS="qemu-system-x86:qemu-system-x86_64 qemu-utils:qemu-img debootstrap:debootstrap cpio:cpio
squashfs-tools:mksquashfs e2fsprogs:mke2fs xfsprogs:mkfs.xfs fdisk:sfdisk"

deps() {
	local missing="" pair
	for pair in $HOST_TOOLS; do
		command -v "${pair#*:}" >/dev/null || missing="$missing ${pair%%:*}"
	done
	[ -z "$missing" ] && return 0
	step "installing host tools:$missing"
	[ "$(id -u)" = 0 ] || die "need root to install$missing"
	apt-get update -qq >&2 || true
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >&2
}

rootfs_key() { key "$HERE/packages.txt" "$HERE/rootfs.sh" "$DEBIAN_SUITE" "$DEBIAN_MIRROR"; }
rootfs_dir() { echo "$IMGBASE_CACHE/rootfs-$(rootfs_key)"; }

rootfs() {
	local out; out=$(rootfs_dir)
	if [ -f "$out/done" ]; then step "rootfs: cached $out"; return 0; fi
	deps
	mkdir -p "$IMGBASE_CACHE"
	local tmp="$out.tmp"
	rm -rf "$tmp"
	bash "$HERE/rootfs.sh" "$tmp"
	touch "$tmp/done"
	publish "$tmp" "$out"
}

agent_key() {
	key $(ls "$REPO"/test/vm/agent/*.go "$REPO"/test/vm/wire/*.go) \
		"$REPO/test/vm/agent/imgbase-test-agent.service" "$(go version)"
}
agent_bin() { echo "$IMGBASE_CACHE/agent-$(agent_key)"; }

agent() {
	local out; out=$(agent_bin)
	[ -x "$out" ] && return 0
	step "agent: building $out"
	mkdir -p "$IMGBASE_CACHE"
	(cd "$REPO" && CGO_ENABLED=0 go build -trimpath -o "$out.tmp" ./test/vm/agent)
	mv "$out.tmp" "$out"
}

# stage ROOT VERSION: a copy of the Debian root made into test OS "VERSION"
# (the host is installed from version 1.0).
stage() {
	local root=$1 ver=$2 rel=1
	step "stage: root for version $ver"
	cp -a "$(rootfs_dir)/root" "$root"
	install -D -m 0755 "$(agent_bin)" "$root/usr/local/sbin/imgbase-test-agent"
	install -D -m 0644 "$REPO/test/vm/agent/imgbase-test-agent.service" \
		"$root/etc/systemd/system/imgbase-test-agent.service"
	mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
	ln -sf ../imgbase-test-agent.service "$root/etc/systemd/system/multi-user.target.wants/"
	install -D -m 0644 /dev/null "$root/usr/share/imgbase-test/version"
	echo "$ver" >"$root/usr/share/imgbase-test/version"
	install -D -m 0644 /dev/null "$root/usr/share/imgbase/build/meta/nvr"
	echo "imgbase-test-$ver-$rel" >"$root/usr/share/imgbase/build/meta/nvr"
	# The one /etc file that differs between the versions.
	printf '# shipped by imgbase-test %s\nrelease=%s\n' "$ver" "$ver" >"$root/etc/imgbase-test.conf"
	# LABEL=boot is the same on every host, so a test image's fstab fits any.
	cat >"$root/etc/fstab" <<-FSTAB
	/dev/HostVG/root / ext4 defaults,discard 0 1
	LABEL=boot /boot ext4 defaults 0 2
	FSTAB
	echo imgbase-test >"$root/etc/hostname"
	if [ "$ver" != 1.0 ]; then
		# The package added in later versions.
		cp "$(rootfs_dir)"/debs/hello_*.deb "$root/tmp/hello.deb"
		chroot "$root" dpkg -i /tmp/hello.deb >&2
		rm -f "$root/tmp/hello.deb"
	fi
}

# mkext4 DIR IMG SIZE: an ext4 image of DIR; metadata_csum_seed makes a
# layer's UUID change cheap.
mkext4() {
	mkfs.ext4 -q -F -O metadata_csum_seed -L "${4:-root}" -E root_owner=0:0 -d "$1" "$2" "$3" >&2
}

image_key() { key "$(rootfs_key)" "$(agent_key)" "$HERE/build.sh" "$HERE/install.sh" "$HERE/grub.cfg.in"; }
image_dir() { echo "$IMGBASE_CACHE/image-$(image_key)"; }

image() {
	rootfs; agent
	local out; out=$(image_dir)
	if [ -f "$out/disk.raw" ]; then step "image: cached $out/disk.raw"; emit_image; return 0; fi
	local tmp="$out.tmp"
	rm -rf "$tmp"; mkdir -p "$tmp"
	stage "$tmp/stage" 1.0
	install -D -m 0755 "$HERE/install.sh" "$tmp/stage/usr/local/lib/imgbase-test/install"
	install -D -m 0644 "$HERE/grub.cfg.in" "$tmp/stage/usr/local/lib/imgbase-test/grub.cfg.in"
	cp "$tmp"/stage/boot/vmlinuz-* "$tmp/vmlinuz"
	cp "$tmp"/stage/boot/initrd.img-* "$tmp/initrd.img"
	step "image: making the root filesystem image"
	mkext4 "$tmp/stage" "$tmp/root.ext4" 3G root
	rm -rf "$tmp/stage"
	truncate -s 8G "$tmp/disk.raw.part"
	qemu-img create -q -f qcow2 -F raw -b "$tmp/root.ext4" "$tmp/installer.qcow2"
	step "image: installer guest (partition, LVM thin pool, root LV, GRUB)"
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
	step "image: $out/disk.raw ($(du -h --apparent-size "$out/disk.raw" | cut -f1) apparent, $(du -h "$out/disk.raw" | cut -f1) used)"
	emit_image
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

testimages_key() { key "$(rootfs_key)" "$(agent_key)" "$HERE/build.sh"; }
testimages_dir() { echo "$IMGBASE_CACHE/testimages-$(testimages_key)"; }

testimages() {
	rootfs; agent
	local out; out=$(testimages_dir)
	if [ -f "$out/payload.ext4" ]; then step "testimages: cached $out"; emit_testimages; return 0; fi
	local tmp="$out.tmp" v
	rm -rf "$tmp"; mkdir -p "$tmp/payload"
	for v in 1 2; do
		stage "$tmp/stage" "$v.0"
		local mb; mb=$(du -sm "$tmp/stage" | cut -f1)
		[ "$mb" -lt 850 ] || die "test root is ${mb} MiB, too big for a 1G base"
		step "testimages: v$v.img (ext4, ${mb} MiB of files)"
		mkext4 "$tmp/stage" "$tmp/payload/v$v.img" 1000M imgbase-test
		rm -rf "$tmp/stage"
		step "testimages: v$v.squashfs (LiveOS/rootfs.img)"
		mkdir -p "$tmp/live/LiveOS"
		ln "$tmp/payload/v$v.img" "$tmp/live/LiveOS/rootfs.img"
		mksquashfs "$tmp/live" "$tmp/payload/v$v.squashfs" -noappend -quiet -no-progress >&2
		rm -rf "$tmp/live"
	done
	step "testimages: payload disk"
	local size; size=$(du -sm --apparent-size "$tmp/payload" | cut -f1)
	mkfs.ext4 -q -F -L payload -E root_owner=0:0 -d "$tmp/payload" "$tmp/payload.ext4" "$((size * 11 / 10 + 64))M" >&2
	mv "$tmp/payload" "$tmp/files"
	publish "$tmp" "$out"
	emit_testimages
}

emit_testimages() {
	echo "IMGBASE_VM_PAYLOAD=$(testimages_dir)/payload.ext4"
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
		mksquashfs "$tmp" "$out.tmp" -noappend -quiet -no-progress >&2
		rm -rf "$tmp"; mv "$out.tmp" "$out"
	fi
	local disk; disk="$(image_dir)/disk.raw"
	printf '%-28s %8s %8s\n' "" apparent used
	printf '%-28s %8s %8s\n' "disk image (raw)" "$(du -h --apparent-size "$disk" | cut -f1)" "$(du -h "$disk" | cut -f1)"
	printf '%-28s %8s %8s\n' "runtime-layout.squash" "$(du -h --apparent-size "$out" | cut -f1)" "$(du -h "$out" | cut -f1)"
	echo "runtime-layout.squash: $out"
}

case "${1:-}" in
deps) deps ;;
rootfs) rootfs ;;
agent) agent; agent_bin ;;
image) image ;;
testimages) testimages ;;
squash) squash ;;
all) image; testimages ;;
*) die "usage: build.sh deps|rootfs|agent|image|testimages|squash|all" ;;
esac
