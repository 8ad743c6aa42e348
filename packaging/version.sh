#!/bin/bash
# version.sh — the version of this checkout, valid as a Debian and as an
# RPM version (digits first; only letters, digits, '.', '+', '~'), growing
# with every commit:
#   on tag v1.2.3            1.2.3
#   5 commits after it       1.2.3+5.gabc1234
#   no v* tag at all         0.0.<commits>+gabc1234
#   v1.0.0-rc1               1.0.0~rc1 (sorts before 1.0.0 in both)
# A changed work tree adds ".dirty". $VERSION, when set, is printed as is
# (after the same check).
set -euo pipefail
cd "$(dirname "$0")/.."

v=${VERSION:-}
if [ -z "$v" ]; then
	if d=$(git describe --tags --long --match 'v[0-9]*' 2>/dev/null); then
		# v1.2.3-rc1-5-gabc1234: the last two fields are git's.
		hash=${d##*-}; rest=${d%-*}; count=${rest##*-}; tag=${rest%-*}
		v=${tag#v}; v=${v//-/\~}
		[ "$count" = 0 ] || v="$v+$count.$hash"
	else
		v="0.0.$(git rev-list --count HEAD)+g$(git rev-parse --short=7 HEAD)"
	fi
	[ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] || v="$v.dirty"
fi
if ! [[ $v =~ ^[0-9][A-Za-z0-9.+~]*$ ]]; then
	echo "version.sh: $v is not a valid deb and rpm version (digits first, then letters, digits, . + ~)" >&2
	exit 1
fi
echo "$v"
