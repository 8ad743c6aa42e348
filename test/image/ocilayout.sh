# Sourced, by the host build (ociregistry.sh) and by the VM tests in the
# guest (which has no container tools): how to make an OCI image layout
# in $L by hand. blob FILE stores a file as a blob (a file already in
# $L/blobs is taken as it is, not hashed again) and prints "DIGEST SIZE";
# image NVR TAG LAYER... writes the config and manifest of an image of
# those uncompressed layer blobs, points TAG at it in index.json (the only
# tag: it moves) and prints the manifest's digest.
mkdir -p "$L/blobs/sha256"
echo '{"imageLayoutVersion":"1.0.0"}' >"$L/oci-layout"
blob() {
	case $1 in
	"$L"/blobs/sha256/*) d=${1##*/} ;;
	*) d=$(sha256sum "$1" | cut -d' ' -f1) ;;
	esac
	s=$(stat -L -c %s "$1")
	[ -e "$L/blobs/sha256/$d" ] || mv "$1" "$L/blobs/sha256/$d"
	echo "$d $s"
}
image() {
	local nvr=$1 tag=$2 diffs= layers= l d s cd cs md ms
	shift 2
	for l in "$@"; do
		set -- $(blob "$l"); d=$1 s=$2
		diffs="$diffs${diffs:+,}\"sha256:$d\""
		layers="$layers${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"sha256:$d\",\"size\":$s}"
	done
	printf '{"architecture":"amd64","os":"linux","config":{"Labels":{"imgbase.nvr":"%s"}},"rootfs":{"type":"layers","diff_ids":[%s]}}' "$nvr" "$diffs" >"$L/config.json"
	set -- $(blob "$L/config.json"); cd=$1 cs=$2
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' "$cd" "$cs" "$layers" >"$L/manifest.json"
	set -- $(blob "$L/manifest.json"); md=$1 ms=$2
	printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' "$md" "$ms" "$tag" >"$L/index.json"
	echo "sha256:$md"
}
