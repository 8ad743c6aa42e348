# Sourced by build.sh.

# zstd: several times faster than the default gzip on 2 cores; the guest
# kernel reads it.
SQUASH_OPTS="-comp zstd -Xcompression-level 3"

testimages_key() { key "$(rootfs_key)" "$(agent_key)" "$(recorder_key)" "$HERE/stage.sh" "$HERE/testimages.sh" "$SQUASH_OPTS"; }
testimages_dir() { echo "$IMGBASE_CACHE/testimages-$(testimages_key)"; }

testimages() {
	rootfs; agent; recorder
	local out; out=$(testimages_dir)
	if [ -f "$out/payload.ext4" ]; then step "testimages: cached $out"; emit_testimages; return 0; fi
	local tmp="$out.tmp" v
	rm -rf "$tmp"; mkdir -p "$tmp/payload"
	# v3 is only ever installed as ext4, by delta from v2 and back.
	for v in 1 2 3; do
		stage "$tmp/stage" "$v.0"
		# As an image's build ends: the record a full write copies into
		# the base and a delta takes the image's hashes from.
		"$(recorder_bin)" manifest --record "$tmp/stage" >&2
		local mb; mb=$(du -sm "$tmp/stage" | cut -f1)
		[ "$mb" -lt 850 ] || die "test root is ${mb} MiB, too big for a 1G base"
		step "testimages: v$v.img (ext4, ${mb} MiB of files)"
		mkext4 "$tmp/stage" "$tmp/payload/v$v.img" 1000M imgbase-test
		if [ "$v" = 2 ]; then
			step "testimages: v2-xfs.img (XFS, the same files)"
			mkxfs "$tmp/stage" "$tmp/payload/v2-xfs.img" 1000M "$tmp/mnt"
		fi
		rm -rf "$tmp/stage"
		[ "$v" != 3 ] || continue
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


# mkxfs DIR IMG SIZE MNT: an XFS image of DIR. mkfs.xfs cannot copy a
# directory in, so the image is loop-mounted at MNT and filled.
mkxfs() {
	truncate -s "$3" "$2"
	mkfs.xfs -q -f -L imgbase-test "$2" >&2
	mkdir -p "$4"
	mount -o loop "$2" "$4"
	if ! cp -a "$1/." "$4/"; then umount "$4"; die "cannot fill $2"; fi
	umount "$4"
	rmdir "$4"
}
