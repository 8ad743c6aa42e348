#!/bin/bash
# build.sh TARGET — builds the VM test artefacts into $IMGBASE_CACHE, each
# keyed by a hash of its inputs so that an unchanged input is never rebuilt.
#   deps        install the host tools (apt-get) when missing
#   rootfs      debootstrap the Debian root shared by every image
#   agent       the static guest agent (test/vm/agent)
#   image       the host disk image (thin LVM, GRUB); prints its path
#   uefi-image  the UEFI host disk image (GPT, ESP at /boot/efi, systemd-boot)
#   testimages  v1/v2 OS images (raw ext4 + squashfs) and the payload disk
#   squash      runtime-layout.squash, size printed beside the raw image's
#   all         image and testimages, and uefi-image with IMGBASE_LONG set
#               (make check-long: its only test is a long one)
#   keys        the input hashes the cache is keyed by
# Each target prints KEY=path lines on stdout for the harness (env.sh).
source "$(dirname "$0")/lib.sh"

for f in stage.sh image.sh uefi.sh testimages.sh; do source "$HERE/$f"; done

HOST_TOOLS="qemu-system-x86:qemu-system-x86_64 qemu-utils:qemu-img debootstrap:debootstrap cpio:cpio
squashfs-tools:mksquashfs e2fsprogs:mke2fs xfsprogs:mkfs.xfs fdisk:sfdisk
ovmf:/usr/share/OVMF/OVMF_CODE_4M.fd"

deps() {
	local missing="" pair
	for pair in $HOST_TOOLS; do
		case ${pair#*:} in
		/*) [ -e "${pair#*:}" ] ;;
		*) command -v "${pair#*:}" >/dev/null ;;
		esac || missing="$missing ${pair%%:*}"
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
	bash "$HERE/rootfs.sh" "$tmp"
	touch "$tmp/done"
	publish "$tmp" "$out"
}

agent_key() {
	key $(ls "$REPO"/test/vm/agent/*.go "$REPO"/test/vm/wire/*.go | grep -v _test.go) \
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

case "${1:-}" in
deps) deps ;;
rootfs) rootfs ;;
agent) agent; agent_bin ;;
image) image ;;
uefi-image) uefi_image ;;
testimages) testimages ;;
squash) squash ;;
all) image; if [ -n "${IMGBASE_LONG:-}" ]; then uefi_image; fi; testimages ;;
keys) echo "rootfs=$(rootfs_key) agent=$(agent_key) image=$(image_key) uefi-image=$(uefi_image_key) testimages=$(testimages_key)" ;;
*) die "usage: build.sh deps|rootfs|agent|image|uefi-image|testimages|squash|all" ;;
esac
