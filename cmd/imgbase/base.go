package main

import (
	"context"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/imgbase/imgbase/internal/host"
	"github.com/imgbase/imgbase/internal/size"
)

func (a *app) baseCommand() *cobra.Command {
	var (
		add, latest     bool
		remove, ofLayer string
		sizeArg         string
		verifyName      string
		delta           deltaFlags
		pin, unpin      string
		img             imageFlags
	)
	c := &cobra.Command{
		Use:   "base (--add [NVR] --size SIZE [IMAGE] | --remove NVR | --latest | --of-layer LAYER)",
		Short: "Add, remove or find bases",
		Example: `  imgbase base --add Base-2-0 --size 1G         # an empty base
  imgbase base --add --size 1G /tmp/rootfs.img  # from a raw ext4/XFS image; NVR from its metadata
  imgbase base --latest
  imgbase base --of-layer Base-1-0+1
  imgbase base --pin Base-1-0                   # never garbage-collect this base
  imgbase base --remove Base-1-0                # with its layers; never the base of the running layer
  imgbase base --verify Base-1-0                # its tree against the manifest it recorded`,
		Args: cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if countTrue(add, latest, remove != "", ofLayer != "", pin != "", unpin != "", verifyName != "") != 1 {
				return usagef("say one of --add, --remove, --latest, --of-layer, --pin, --unpin or --verify; see 'imgbase base --help'")
			}
			if !add && len(args) > 0 {
				return usagef("unexpected argument %q; see 'imgbase base --help'", args[0])
			}
			var name, image string
			var bytes uint64
			if add {
				name, image = splitBaseArgs(args)
				if name == "" && image == "" {
					return usagef("--add needs an NVR or an image: 'imgbase base --add NVR --size SIZE [IMAGE]'")
				}
				if sizeArg == "" && image == "" {
					return usagef("--add of an empty base needs --size, e.g. --size 10G")
				}
				var err error
				if bytes, err = parseOptionalSize(sizeArg); err != nil {
					return err
				}
			}
			s, err := a.open(cmd.Context(), add || remove != "" || pin != "" || unpin != "" || verifyName != "")
			if err != nil {
				return err
			}
			defer s.close()
			ctx := cmd.Context()
			switch {
			case add && image == "":
				if err := s.host.AddEmptyBase(ctx, name, bytes); err != nil {
					return err
				}
				if !a.dry {
					a.printf("Added empty base %s\n", name)
				}
				return nil
			case add:
				if ref, ok, err := ociImage(image); err != nil {
					return err
				} else if ok {
					if err := delta.forOCI(); err != nil {
						return err
					}
					req, err := a.ociRequest(s, ref, name, bytes, img.keysDir, img.insecure)
					if err != nil {
						return err
					}
					res, err := s.host.AddBaseFromOCI(ctx, req)
					if err != nil {
						return err
					}
					if a.json {
						return a.printJSON(res)
					}
					if !a.dry {
						a.printf("Added base %s from %s (%s)\n", res.Base, res.Ref, res.Digest)
						a.printf("Downloaded %d bytes, %d from the blob cache\n", res.Downloaded, res.FromCache)
					}
					return nil
				}
				res, err := s.host.AddBaseFromImage(ctx, host.ImageRequest{Image: image, NVR: name, Size: bytes, Progress: a.progressFunc(), Verify: img.options(),
					Full: delta.full, FromBase: delta.fromBase})
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(res)
				}
				if !a.dry {
					a.printf("Added base %s from %s (%s)\n", res.Base, image, res.Way)
				}
				return nil
			case verifyName != "":
				return a.verifyBase(ctx, s, verifyName)
			case pin != "" || unpin != "":
				return s.host.Pin(ctx, pin+unpin, pin != "")
			case remove != "":
				if err := s.host.RemoveBase(ctx, remove); err != nil {
					return err
				}
				if !a.dry {
					a.printf("Removed base %s\n", remove)
				}
				return nil
			}
			t, err := s.host.Initialized(ctx)
			if err != nil {
				return err
			}
			if latest {
				b := t.LatestBase()
				if b == nil {
					return errf("there is no base yet; add one with 'imgbase base --add NVR --size SIZE IMAGE'")
				}
				return a.printList([]string{b.Name()})
			}
			l := t.Layer(ofLayer)
			if l == nil {
				return errf("cannot find layer %q; see 'imgbase layout --layers'", ofLayer)
			}
			return a.printList([]string{l.Base.Name()})
		},
	}
	f := c.Flags()
	f.BoolVar(&add, "add", false, "add a base: empty (NVR and --size) or from IMAGE (NVR from its metadata when not given)")
	f.StringVar(&remove, "remove", "", "remove base `NVR` with all its layers")
	f.BoolVar(&latest, "latest", false, "print the newest base")
	f.StringVar(&ofLayer, "of-layer", "", "print the base of `LAYER`")
	f.StringVar(&sizeArg, "size", "", "size of the base's LV, e.g. 1G (default: the image's filesystem size)")
	f.StringVar(&pin, "pin", "", "keep base `NVR` when old bases are removed after an update")
	f.StringVar(&unpin, "unpin", "", "let base `NVR` be removed again")
	f.StringVar(&verifyName, "verify", "", "check the tree of base `NVR` against the manifest it recorded; exit 1 on any difference")
	img.register(f)
	delta.register(f)
	a.completeFlags(c, bases, "remove", "pin", "unpin", "verify", "from-base")
	a.completeFlags(c, layers, "of-layer")
	return c
}

// splitBaseArgs tells the NVR from the image in base --add's arguments: one
// argument is an image when it names an existing file or has a slash.
func splitBaseArgs(args []string) (name, image string) {
	switch len(args) {
	case 1:
		if looksLikeFile(args[0]) {
			return "", args[0]
		}
		return args[0], ""
	case 2:
		return args[0], args[1]
	}
	return "", ""
}

func looksLikeFile(s string) bool {
	if strings.Contains(s, "/") {
		return true
	}
	_, err := os.Stat(s)
	return err == nil
}

// parseOptionalSize reads --size; "" is 0 (let imgbase choose).
func parseOptionalSize(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := size.Parse(s)
	if err != nil {
		return 0, usagef("%v", err)
	}
	return n, nil
}

// deltaFlags choose between the delta from a predecessor base and a full
// write, for every command that installs an image.
type deltaFlags struct {
	full     bool
	fromBase string
}

func (d *deltaFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&d.full, "full", false, "write the whole image even when a delta from the predecessor base would write less")
	fs.StringVar(&d.fromBase, "from-base", "", "make the new base a delta from base `NVR` (default: the running layer's base)")
}

// forOCI refuses the delta flags with an OCI image: its layers are always
// extracted into a new, empty base.
func (d *deltaFlags) forOCI() error {
	if d.full || d.fromBase != "" {
		return usagef("--full and --from-base are for image files; an OCI image is always extracted into a new base")
	}
	return nil
}

// verifyBase prints every difference of a base's tree from its manifest.
func (a *app) verifyBase(ctx context.Context, s *session, name string) error {
	res, err := s.host.VerifyBase(ctx, name)
	if err != nil {
		return err
	}
	if a.json {
		if err := a.printJSON(res); err != nil {
			return err
		}
	}
	return a.reportVerification(res)
}

// reportVerification prints a verification (unless --json printed it) and
// fails when the base differs from its manifest.
func (a *app) reportVerification(res *host.BaseVerification) error {
	if !a.json && !a.dry {
		for _, d := range res.Differences {
			a.printf("%s\n", d.String())
		}
		switch {
		case !res.Manifest:
			a.printf("base %s has no manifest (written from an image that records none); nothing to verify against\n", res.Base)
		case len(res.Differences) == 0:
			a.printf("base %s matches its manifest (%d entries)\n", res.Base, res.Entries)
		}
	}
	if len(res.Differences) > 0 {
		return errf("base %s differs from its manifest in %d place(s)", res.Base, len(res.Differences))
	}
	return nil
}
