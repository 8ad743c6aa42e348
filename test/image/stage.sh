# Sourced by build.sh.

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
	if [ "$ver" = 3.0 ]; then
		# Version 3 against 2, for the delta tests: a directory deleted, a
		# regular file turned into a symlink, and a changed kernel.
		rm -rf "$root/usr/share/bash-completion"
		mv "$root/etc/imgbase-test.conf" "$root/usr/share/imgbase-test/imgbase-test.conf"
		ln -s ../usr/share/imgbase-test/imgbase-test.conf "$root/etc/imgbase-test.conf"
		# The same vmlinuz with an initramfs that carries one more file: the
		# kernel unpacks concatenated archives (compressed or not, each
		# starting 4-byte aligned), so v3's trial boot proves the changed
		# initramfs boots without building a second kernel.
		local initrd cpiodir
		initrd=$(echo "$root"/boot/initrd.img-*)
		[ -f "$initrd" ] || die "stage: no initramfs in $root/boot"
		truncate -s %4 "$initrd"
		cpiodir=$(mktemp -d)
		echo "imgbase-test $ver" >"$cpiodir/imgbase-test-initrd"
		(cd "$cpiodir" && echo imgbase-test-initrd | cpio -o -H newc --quiet) >>"$initrd"
		rm -rf "$cpiodir"
	fi
}

# mkext4 DIR IMG SIZE: an ext4 image of DIR; metadata_csum_seed makes a
# layer's UUID change cheap.
mkext4() {
	mkfs.ext4 -q -F -O metadata_csum_seed -L "${4:-root}" -E root_owner=0:0 -d "$1" "$2" "$3" >&2
}

