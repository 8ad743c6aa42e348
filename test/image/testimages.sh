# Sourced by build.sh.

# zstd: several times faster than the default gzip on 2 cores; the guest
# kernel reads it.
SQUASH_OPTS="-comp zstd -Xcompression-level 3"

testimages_key() { key "$(rootfs_key)" "$(agent_key)" "$HERE/stage.sh" "$HERE/testimages.sh" "$SQUASH_OPTS"; }
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
		mksquashfs "$tmp/live" "$tmp/payload/v$v.squashfs" -noappend -quiet -no-progress $SQUASH_OPTS >&2
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

