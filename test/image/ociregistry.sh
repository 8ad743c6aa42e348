# Sourced by build.sh.
#
# ociregistry: the disk the VM tests' registry serves from (label ocidisk,
# attached read-only to every guest): v2.img's tree as an OCI image of one
# uncompressed layer, in an OCI layout (oci/) and pushed, on the host, into
# a docker-registry's storage (registry/) as imgbase-test:2.0, with
# v2.digest, v2.layer and v2.size beside them and ocilayout.sh for the
# tests that push more. Tarring, hashing and pushing 658 MB took a TCG
# guest about five minutes; here it is done once per test image.

# The NVR the image is labelled with: v2.img's (seeds_test.go's nvr2).
OCI_NVR2=imgbase-test-2.0-1

ociregistry_key() {
	key "$(testimages_key)" "$(ocipush_key)" "$HERE/ociregistry.sh" "$HERE/ocilayout.sh" \
		"$(dpkg-query -W -f '${Version}' docker-registry 2>/dev/null || echo none)"
}
ociregistry_dir() { echo "$IMGBASE_CACHE/ociregistry-$(ociregistry_key)"; }

ociregistry() {
	testimages >/dev/null
	local pusher; pusher=$(ocipush | sed 's/^IMGBASE_VM_OCIPUSH=//')
	local out; out=$(ociregistry_dir)
	if [ -f "$out/oci.ext4" ]; then step "ociregistry: cached $out"; emit_ociregistry; return 0; fi
	command -v docker-registry >/dev/null || die "ociregistry needs docker-registry on the host (make deps)"
	local tmp="$out.tmp"
	rm -rf "$tmp"; mkdir -p "$tmp/disk" "$tmp/mnt"
	step "ociregistry: v2.img's tree as an OCI layer"
	mount -o ro,loop "$(testimages_dir)/files/v2.img" "$tmp/mnt"
	if ! (cd "$tmp/mnt" && tar --numeric-owner --xattrs --xattrs-include='*' --exclude=./lost+found -cf "$tmp/v2.tar" .); then
		umount "$tmp/mnt"; die "cannot tar v2.img's tree"
	fi
	umount "$tmp/mnt"
	local layer; layer=$(sha256sum "$tmp/v2.tar" | cut -d' ' -f1)
	stat -c %s "$tmp/v2.tar" >"$tmp/disk/v2.size"
	echo "sha256:$layer" >"$tmp/disk/v2.layer"
	cp "$HERE/ocilayout.sh" "$tmp/disk/ocilayout.sh"
	# The tar goes in as the blob it is, so that blob() need not hash it again.
	(L=$tmp/disk/oci; source "$HERE/ocilayout.sh"; mv "$tmp/v2.tar" "$L/blobs/sha256/$layer"
		image "$OCI_NVR2" 2.0 "$L/blobs/sha256/$layer") >"$tmp/disk/v2.digest"
	step "ociregistry: pushing it into a registry's storage"
	local port=$((20000 + RANDOM % 20000)) pid pushed
	printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
		"$tmp/disk/registry" "$port" >"$tmp/registry.yml"
	docker-registry serve "$tmp/registry.yml" >"$tmp/registry.log" 2>&1 &
	pid=$!
	pushed=$(for i in $(seq 50); do
		"$pusher" "$tmp/disk/oci" 2.0 "127.0.0.1:$port/imgbase-test:2.0" 2>/dev/null && break
		sleep 0.2
	done)
	kill "$pid"; wait "$pid" 2>/dev/null || true
	[ "$pushed" = "$(cat "$tmp/disk/v2.digest")" ] || { cat "$tmp/registry.log" >&2; die "cannot push v2 into the registry (got '$pushed')"; }
	# One copy of the layer on the disk: the registry's is the layout's.
	local data="$tmp/disk/registry/docker/registry/v2/blobs/sha256/${layer:0:2}/$layer/data"
	cmp "$data" "$tmp/disk/oci/blobs/sha256/$layer" || die "the registry's copy of the layer differs"
	ln -f "$tmp/disk/oci/blobs/sha256/$layer" "$data"
	local size; size=$(du -sm "$tmp/disk" | cut -f1)
	mkfs.ext4 -q -F -L ocidisk -E root_owner=0:0 -d "$tmp/disk" "$tmp/oci.ext4" "$((size * 11 / 10 + 32))M" >&2
	rm -rf "$tmp/disk" "$tmp/mnt"
	publish "$tmp" "$out"
	emit_ociregistry
}

emit_ociregistry() {
	echo "IMGBASE_VM_OCIDISK=$(ociregistry_dir)/oci.ext4"
}
