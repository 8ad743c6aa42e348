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
}

# mkext4 DIR IMG SIZE: an ext4 image of DIR; metadata_csum_seed makes a
# layer's UUID change cheap.
mkext4() {
	mkfs.ext4 -q -F -O metadata_csum_seed -L "${4:-root}" -E root_owner=0:0 -d "$1" "$2" "$3" >&2
}

