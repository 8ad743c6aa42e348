# Shared helpers of the image build scripts. Sourced, not run.
set -euo pipefail

: "${IMGBASE_CACHE:=/var/cache/imgbase}"
: "${DEBIAN_MIRROR:=http://deb.debian.org/debian}"
: "${DEBIAN_SUITE:=bookworm}"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
START=${IMGBASE_BUILD_START:-$(date +%s)}
export IMGBASE_BUILD_START=$START IMGBASE_CACHE

# step prints a progress line with the time elapsed since the build started.
step() {
	local t=$(( $(date +%s) - START ))
	printf '[%3d:%02d] %s\n' $((t / 60)) $((t % 60)) "$*" >&2
}

die() { echo "image: $*" >&2; exit 1; }

# key prints a short hash of its arguments' contents (files) or text.
key() {
	local a
	for a in "$@"; do
		if [ -f "$a" ]; then sha256sum <"$a"; else printf '%s\n' "$a"; fi
	done | sha256sum | cut -c1-16
}

# publish moves a finished build into place, so a half-built one is never
# used, and drops all but the newest two builds of the same kind (keys of
# other branches), so the cache does not grow without end.
publish() {
	rm -rf "$2"; mv "$1" "$2"
	local old
	for old in $(ls -dt "${2%-*}"-* | grep -v '\.tmp$' | tail -n +3); do
		step "cache: removing old build $old"
		rm -rf "$old"
	done
}
