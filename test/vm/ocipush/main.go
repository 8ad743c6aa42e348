// Command ocipush pushes the image tagged TAG in the OCI layout DIR to
// REF on a plain-HTTP registry and prints its manifest digest:
//
//	ocipush DIR TAG REF
//
// The image build pushes v2 into a registry's storage on the host with it
// (test/image/ociregistry.sh); the VM tests' guest, which has no network
// and no container tools, pushes into its registry on its loopback with it.
package main

import (
	"fmt"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: ocipush DIR TAG REF")
		os.Exit(2)
	}
	d, err := push(os.Args[1], os.Args[2], os.Args[3])
	if err != nil {
		fmt.Fprintln(os.Stderr, "ocipush:", err)
		os.Exit(1)
	}
	fmt.Println(d)
}

func push(dir, tag, ref string) (v1.Hash, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return v1.Hash{}, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return v1.Hash{}, err
	}
	to, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return v1.Hash{}, err
	}
	for _, m := range im.Manifests {
		if m.Annotations["org.opencontainers.image.ref.name"] != tag {
			continue
		}
		img, err := idx.Image(m.Digest)
		if err != nil {
			return v1.Hash{}, err
		}
		if err := remote.Write(to, img); err != nil {
			return v1.Hash{}, fmt.Errorf("cannot push %s:%s to %s: %w", dir, tag, ref, err)
		}
		return m.Digest, nil
	}
	return v1.Hash{}, fmt.Errorf("no image tagged %q in %s", tag, dir)
}
