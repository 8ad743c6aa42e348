#!/bin/bash
# check.sh — checks the packages `make package` put in dist/ (make
# package-check): lintian, the rpm's file list and header, the man pages,
# the completions, and install → upgrade → remove → purge of the .deb in a
# Debian chroot (an overlay on the VM tests' debootstrap tree, which is
# never written to). Every failed check prints "FAIL: …" and exits 1.
# Needs root (the chroot), lintian, rpm, man-db (make deps).
set -euo pipefail
cd "$(dirname "$0")/../.."

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
trap 'echo "FAIL: test/package/check.sh line $LINENO: $BASH_COMMAND" >&2' ERR
# same WHAT WANT GOT: fails showing both lists when they differ.
same() {
	[ "$2" = "$3" ] && return 0
	diff -u <(echo "$2") <(echo "$3") | sed 's/^/  /' >&2 || true
	fail "$1 (- expected, + got)"
}

V=$(packaging/version.sh)
DIST=${DIST:-dist}
deb=$DIST/imgbase_${V}_amd64.deb
deb_arm=$DIST/imgbase_${V}_arm64.deb
rpm=$DIST/imgbase-$V-1.x86_64.rpm
rpm_arm=$DIST/imgbase-$V-1.aarch64.rpm
for f in "$deb" "$deb_arm" "$rpm" "$rpm_arm"; do
	[ -s "$f" ] || fail "$f missing: run make package"
done

tmp=$(mktemp -d /tmp/imgbase-package-check.XXXXXX)
cleanup() {
	mountpoint -q "$tmp/root" && umount "$tmp/root"
	rm -rf "$tmp"
}
trap cleanup EXIT

# --- the files each package ships -----------------------------------------
common='/etc/grub.d/15_imgbase
/etc/imgbased.conf
/usr/lib/systemd/system-preset/80-imgbase.preset
/usr/lib/systemd/system/imgbase-boot-success.service
/usr/lib/systemd/system/imgbase-recover.service
/usr/lib/systemd/system/imgbase-update.service
/usr/lib/systemd/system/imgbase-update.timer
/usr/sbin/imgbase
/usr/share/bash-completion/completions/imgbase
/usr/share/doc/imgbase/README.md
/usr/share/doc/imgbase/copyright
/usr/share/fish/vendor_completions.d/imgbase.fish'
debfiles=$(dpkg-deb --fsys-tarfile "$deb" | tar -t | grep -v '/$' | sed 's|^\./|/|' | sort)
man=$(grep '^/usr/share/man/man8/' <<<"$debfiles" || true)
for page in imgbase.8.gz imgbase-update.8.gz imgbase-layer.8.gz; do
	grep -qx "/usr/share/man/man8/$page" <<<"$man" || fail "$deb has no man page $page"
done
debhooks='/etc/initramfs/post-update.d/imgbase
/etc/kernel/postinst.d/zz-imgbase
/etc/kernel/postrm.d/zz-imgbase'
same "$deb file list" "$(sort <<<"$common
$debhooks
$man
/usr/share/doc/imgbase/changelog.gz
/usr/share/lintian/overrides/imgbase
/usr/share/zsh/vendor-completions/_imgbase")" "$debfiles"
same "$deb_arm file list" "$debfiles" \
	"$(dpkg-deb --fsys-tarfile "$deb_arm" | tar -t | grep -v '/$' | sed 's|^\./|/|' | sort)"
ok ".deb file lists ($(wc -l <<<"$debfiles") files, $(wc -l <<<"$man") man pages)"

field() { dpkg-deb -f "$1" "$2"; }
same "$deb fields" "Version: $V
Architecture: amd64
Maintainer: set
Homepage: https://github.com/imgbase/imgbase
Section: admin
Depends: lvm2, thin-provisioning-tools, e2fsprogs, mount, init-system-helpers (>= 1.54~)
Recommends: xfsprogs, grub-pc | grub-efi-amd64 | grub-efi-arm64 | systemd-boot" \
	"$(for f in Version Architecture Maintainer Homepage Section Depends Recommends; do
		v=$(field "$deb" $f); [ $f = Maintainer ] && [ -n "$v" ] && v=set; echo "$f: $v"; done)"
same "$deb_arm architecture" arm64 "$(field "$deb_arm" Architecture)"
same "$deb conffiles" "$(sort <<<"/etc/grub.d/15_imgbase
/etc/imgbased.conf
$debhooks")" "$(dpkg-deb -I "$deb" conffiles | sort)"
ok ".deb control fields and conffiles"

rpmfiles=$(rpm -qpl "$rpm" | sort)
same "$rpm file list" "$(sort <<<"$common
$man
/usr/share/doc/imgbase/changelog
/usr/share/zsh/site-functions/_imgbase")" "$rpmfiles"
same "$rpm_arm file list" "$rpmfiles" "$(rpm -qpl "$rpm_arm" | sort)"
info=$(rpm -qpi "$rpm")
for want in "Name        : imgbase" "Version     : $V" "Release     : 1" "Architecture: x86_64" \
	"URL         : https://github.com/imgbase/imgbase" "Vendor      : imgbase" "Build Host  : imgbase"; do
	grep -qxF "$want" <<<"$info" || { echo "$info" >&2; fail "rpm -qpi $rpm: no line '$want'"; }
done
grep -q "^Packager    : ..*" <<<"$info" || fail "rpm -qpi $rpm: no packager"
grep -qx "Architecture: aarch64" <(rpm -qpi "$rpm_arm") || fail "$rpm_arm is not aarch64"
same "$rpm requires" "device-mapper-persistent-data
e2fsprogs
lvm2
util-linux" "$(rpm -qp --requires "$rpm" | grep -v '^rpmlib(' | LC_ALL=C sort)"
same "$rpm recommends" xfsprogs "$(rpm -qp --recommends "$rpm")"
same "$rpm config files" "/etc/grub.d/15_imgbase cn
/etc/imgbased.conf cn" \
	"$(rpm -qp --qf '[%{FILENAMES} %{FILEFLAGS:fflags}\n]' "$rpm" | grep '^/etc/')"
scripts=$(rpm -qp --scripts "$rpm")
grep -q 'systemctl --no-reload preset imgbase-recover.service imgbase-boot-success.service' <<<"$scripts" ||
	fail "$rpm: %post does not preset the units"
grep -q 'systemctl --no-reload disable --now' <<<"$scripts" || fail "$rpm: %preun does not disable the units"
ok ".rpm file lists, header, requires, %config(noreplace), scriptlets"

# The binaries are for their architecture (ELF e_machine: 62 x86-64, 183 aarch64).
machine() {
	dpkg-deb --fsys-tarfile "$1" | tar -xO ./usr/sbin/imgbase >"$tmp/bin"
	od -An -tu2 -j18 -N2 "$tmp/bin" | tr -d ' '
}
same "$deb ELF machine" 62 "$(machine "$deb")"
same "$deb_arm ELF machine" 183 "$(machine "$deb_arm")"
ok "binaries are x86-64 and aarch64"

# --- lintian ----------------------------------------------------------------
for d in "$deb" "$deb_arm"; do
	echo "lintian $d:"
	out=$(lintian -I --fail-on error "$d" 2>&1) || { echo "$out" >&2; fail "lintian reports errors on $d"; }
	echo "$out" | { grep -v 'running with root privileges' || true; } | sed 's/^/  /'
done
ok "lintian: no errors"

# --- man pages and completions ---------------------------------------------
x=$tmp/x
mkdir -p "$x"
dpkg-deb -x "$deb" "$x"
for page in "$x"/usr/share/man/man8/*.gz; do
	[ "$(od -An -tu4 -j4 -N4 "$page" | tr -d ' ')" = 0 ] || fail "${page#$x}: gzip header has a time stamp (gzip -n)"
	out=$(MANWIDTH=80 man --warnings -l "$page" 2>"$tmp/warn") || fail "man -l ${page#$x} failed: $(cat "$tmp/warn")"
	[ ! -s "$tmp/warn" ] || fail "man -l ${page#$x} warns: $(cat "$tmp/warn")"
	grep -q '^NAME' <<<"$out" || fail "man -l ${page#$x}: no NAME section"
done
ok "man -l renders $(ls "$x"/usr/share/man/man8 | wc -l) man pages without warnings"
bash -c 'source "$1" && complete -p imgbase' _ "$x/usr/share/bash-completion/completions/imgbase" >"$tmp/complete" ||
	fail "bash completion: complete -p imgbase failed"
ok "bash completion: $(cat "$tmp/complete")"
if command -v zsh >/dev/null; then zsh -n "$x/usr/share/zsh/vendor-completions/_imgbase" || fail "zsh completion does not parse"; fi
if command -v fish >/dev/null; then fish -n "$x/usr/share/fish/vendor_completions.d/imgbase.fish" || fail "fish completion does not parse"; fi

# --- install, upgrade, remove, purge in a Debian chroot ---------------------
newer=$V.1
DIST=$tmp/newer VERSION=$newer ARCHES=amd64 bash packaging/build.sh >/dev/null
export IMGBASE_CACHE=${IMGBASE_CACHE:-/var/cache/imgbase}
key=$(bash test/image/build.sh keys | tr ' ' '\n' | sed -n 's/^rootfs=//p')
lower=$IMGBASE_CACHE/rootfs-$key
[ -f "$lower/done" ] || bash test/image/build.sh rootfs >&2
lower=$lower/root
r=$tmp/root
mkdir -p "$tmp/upper" "$tmp/work" "$r"
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$tmp/upper,workdir=$tmp/work" "$r"
cp "$deb" "$r/tmp/old.deb"
cp "$tmp/newer/imgbase_${newer}_amd64.deb" "$r/tmp/new.deb"

in_root() { chroot "$r" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C "$@" </dev/null; }
# tree: the root's files but dpkg's own records and logs.
tree() {
	(cd "$r" && find . -xdev \( -path ./var/lib/dpkg -o -path ./var/log -o -path ./tmp -o -path ./var/cache/debconf \) -prune \
		-o -printf '%p %y %l\n' | sed 's|^\./|/|' | sort)
}
before=$(tree)

in_root dpkg -i /tmp/old.deb >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; fail "dpkg -i $deb failed"; }
wants=/etc/systemd/system/multi-user.target.wants
for u in imgbase-boot-success.service imgbase-recover.service; do
	# deb-systemd-helper links to /lib/systemd/system/$u: the same file
	# on a merged /usr.
	same "$wants/$u after install" "/usr/lib/systemd/system/$u" "$(in_root readlink -f "$wants/$u")"
done
# The daily update is the admin's to enable (80-imgbase.preset).
[ ! -e "$r/etc/systemd/system/timers.target.wants/imgbase-update.timer" ] || fail "imgbase-update.timer enabled on install"
in_root /usr/sbin/imgbase --version >"$tmp/version" || fail "/usr/sbin/imgbase --version failed"
grep -qF "$V" "$tmp/version" || fail "imgbase --version says $(cat "$tmp/version"), not $V"
ok "dpkg -i: units enabled, $(head -1 "$tmp/version")"

sed -i 's/^#images_to_keep = 2$/images_to_keep = 3/' "$r/etc/imgbased.conf"
grep -qx 'images_to_keep = 3' "$r/etc/imgbased.conf" || fail "could not edit /etc/imgbased.conf"
# No --force-conf*: an admin's edit of a conffile the package did not
# change is kept without a question; a prompt would fail on the closed stdin.
in_root dpkg -i /tmp/new.deb >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; fail "dpkg -i of $newer (upgrade) failed"; }
same "installed version after upgrade" "$newer" "$(in_root dpkg-query -W -f='${Version}' imgbase)"
grep -qx 'images_to_keep = 3' "$r/etc/imgbased.conf" || fail "the upgrade replaced the edited /etc/imgbased.conf"
[ ! -e "$r/etc/imgbased.conf.dpkg-new" ] && [ ! -e "$r/etc/imgbased.conf.dpkg-dist" ] || fail "the upgrade left a .dpkg-new/.dpkg-dist"
for u in imgbase-boot-success.service imgbase-recover.service; do
	[ -L "$r$wants/$u" ] || fail "$wants/$u gone after upgrade"
done
ok "upgrade to $newer: edited conffile kept, units still enabled"

in_root dpkg --remove imgbase >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; fail "dpkg --remove failed"; }
# What Debian keeps after a remove: the admin's conffile, and (by
# deb-systemd-helper) the enablement, masked while the units are gone, so
# that a reinstall keeps what the admin chose; purge forgets it.
dsh=/var/lib/systemd/deb-systemd-helper
same "files left by dpkg --remove" "$(sort <<EOF
/etc/grub.d/15_imgbase f 
/etc/imgbased.conf f 
/etc/initramfs/post-update.d/imgbase f 
/etc/kernel/postinst.d/zz-imgbase f 
/etc/kernel/postrm.d/zz-imgbase f 
/etc/systemd/system/imgbase-boot-success.service l /dev/null
/etc/systemd/system/imgbase-recover.service l /dev/null
$wants/imgbase-boot-success.service l /lib/systemd/system/imgbase-boot-success.service
$wants/imgbase-recover.service l /lib/systemd/system/imgbase-recover.service
$dsh-enabled/imgbase-boot-success.service.dsh-also f 
$dsh-enabled/imgbase-recover.service.dsh-also f 
$dsh-enabled/multi-user.target.wants/imgbase-boot-success.service f 
$dsh-enabled/multi-user.target.wants/imgbase-recover.service f 
$dsh-masked/imgbase-boot-success.service f 
$dsh-masked/imgbase-recover.service f 
EOF
)" "$(comm -13 <(echo "$before") <(tree) | grep -v ' d $')"
grep -qx 'images_to_keep = 3' "$r/etc/imgbased.conf" || fail "dpkg --remove changed /etc/imgbased.conf"
ok "dpkg --remove: the edited /etc/imgbased.conf and the units' enablement are left"

in_root dpkg --purge imgbase >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; fail "dpkg --purge failed"; }
same "files changed by install, upgrade and purge" "" "$(diff <(echo "$before") <(tree) || true)"
ok "dpkg --purge: the tree is as before the install"
