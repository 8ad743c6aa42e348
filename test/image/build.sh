#!/bin/bash
# build.sh TARGET — builds the VM test artefacts into $IMGBASE_CACHE, each
# keyed by a hash of its inputs so that an unchanged input is never rebuilt.
#   deps        install the host tools (apt-get) when missing
#   rootfs      debootstrap the Debian root shared by every image
#   agent       the static guest agent (test/vm/agent)
#   image       the host disk image (thin LVM, GRUB); prints its path
#   uefi-image  the UEFI host disk image (GPT, ESP at /boot/efi, systemd-boot)
#   dracut-image  the BIOS host disk image with Debian's dracut instead of
#               initramfs-tools, and a payload disk with a dracut v2.img
#   testimages  v1/v2 OS images (raw ext4 + squashfs) and the payload disk
#   squash      runtime-layout.squash, size printed beside the raw image's
#   ocipush     the static OCI pusher the guest pushes into its registry with
#   registry    Debian's docker-registry package, for the guest's registry
#   ociregistry the disk the guest's registry serves v2 from (pushed on the host)
#   skopeo      Debian's skopeo and its libraries, for make bench's pull baseline
#   all         image, testimages, ocipush, registry and ociregistry, and uefi-image and
#               dracut-image with IMGBASE_LONG set (make check-long: their
#               only tests are long ones)
#   keys        the input hashes the cache is keyed by
# Each target prints KEY=path lines on stdout for the harness (env.sh).
source "$(dirname "$0")/lib.sh"

for f in stage.sh image.sh uefi.sh dracut.sh testimages.sh ociregistry.sh; do source "$HERE/$f"; done

HOST_TOOLS="qemu-system-x86:qemu-system-x86_64 qemu-utils:qemu-img debootstrap:debootstrap cpio:cpio
squashfs-tools:mksquashfs e2fsprogs:mke2fs xfsprogs:mkfs.xfs fdisk:sfdisk
ovmf:/usr/share/OVMF/OVMF_CODE_4M.fd docker-registry:docker-registry"

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

# gobin NAME OUT PKG: a static build of Go package PKG at OUT, unless there.
gobin() {
	[ -x "$2" ] && return 0
	step "$1: building $2"
	mkdir -p "$IMGBASE_CACHE"
	(cd "$REPO" && CGO_ENABLED=0 go build -trimpath -o "$2.tmp" "$3")
	mv "$2.tmp" "$2"
}

agent() { gobin agent "$(agent_bin)" ./test/vm/agent; }

# recorder: imgbase itself, run on the build host for 'imgbase manifest
# --record' as each test image's build ends. Keyed on what the record is
# made by, not on all of imgbase: a change elsewhere keeps the images.
recorder_key() {
	key $(ls "$REPO"/internal/manifest/*.go "$REPO"/internal/atomicfile/*.go "$REPO"/internal/sha256x/*.go | grep -v _test.go) \
		"$REPO/cmd/imgbase/manifest.go" "$(go version)"
}
recorder_bin() { echo "$IMGBASE_CACHE/recorder-$(recorder_key)"; }

recorder() { gobin recorder "$(recorder_bin)" ./cmd/imgbase; }

ocipush_key() { key "$REPO"/test/vm/ocipush/main.go "$REPO/go.sum" "$(go version)"; }

ocipush() {
	local out; out="$IMGBASE_CACHE/ocipush-$(ocipush_key)"
	if [ ! -x "$out" ]; then
		step "ocipush: building $out"
		mkdir -p "$IMGBASE_CACHE"
		(cd "$REPO" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out.tmp" ./test/vm/ocipush)
		mv "$out.tmp" "$out"
	fi
	echo "IMGBASE_VM_OCIPUSH=$out"
}

# registry: the docker-registry .deb of the suite the images are made of
# (distribution 2.8 in bookworm); the guest has no network to fetch it.
registry_key() { key docker-registry "$DEBIAN_SUITE" "$DEBIAN_MIRROR"; }

registry() {
	local out; out="$IMGBASE_CACHE/registry-$(registry_key)"
	if ! ls "$out"/docker-registry_*.deb >/dev/null 2>&1; then
		step "registry: downloading docker-registry into $out"
		rm -rf "$out.tmp"; mkdir -p "$out.tmp"
		(cd "$out.tmp" && apt-get download docker-registry >/dev/null 2>&1) || die "cannot download docker-registry"
		publish "$out.tmp" "$out"
	fi
	echo "IMGBASE_VM_REGISTRY_DEB=$(ls "$out"/docker-registry_*.deb)"
}

# skopeo: Debian's skopeo and the two libraries of it the host image lacks
# (libgpgme11, libassuan0), as .debs the guest unpacks: make bench's
# baseline for a pull (skopeo copy, then tar) runs in the guest.
skopeo_key() { key skopeo libgpgme11 libassuan0 "$DEBIAN_SUITE" "$DEBIAN_MIRROR"; }

skopeo() {
	local out; out="$IMGBASE_CACHE/skopeo-$(skopeo_key)"
	if ! ls "$out"/skopeo_*.deb >/dev/null 2>&1; then
		step "skopeo: downloading skopeo, libgpgme11, libassuan0 into $out"
		rm -rf "$out.tmp"; mkdir -p "$out.tmp"
		(cd "$out.tmp" && apt-get download skopeo libgpgme11 libassuan0 >/dev/null 2>&1) || die "cannot download skopeo"
		publish "$out.tmp" "$out"
	fi
	echo "IMGBASE_VM_SKOPEO_DEBS=$out"
}

case "${1:-}" in
deps) deps ;;
rootfs) rootfs ;;
agent) agent; agent_bin ;;
image) image ;;
uefi-image) uefi_image ;;
dracut-image) dracut_image ;;
testimages) testimages ;;
squash) squash ;;
ocipush) ocipush ;;
registry) registry ;;
ociregistry) ociregistry ;;
skopeo) skopeo ;;
all) image; if [ -n "${IMGBASE_LONG:-}" ]; then uefi_image; dracut_image; fi; testimages; ocipush; registry; ociregistry ;;
keys) echo "rootfs=$(rootfs_key) agent=$(agent_key) image=$(image_key) uefi-image=$(uefi_image_key) dracut-image=$(dracut_image_key) testimages=$(testimages_key) ociregistry=$(ociregistry_key)" ;;
*) die "usage: build.sh deps|rootfs|agent|image|uefi-image|dracut-image|testimages|squash|ocipush|registry|ociregistry|skopeo|all" ;;
esac
