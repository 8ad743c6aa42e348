package main

import (
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/imgbase/imgbase/internal/host"
	"github.com/imgbase/imgbase/internal/image/progress"
	"github.com/imgbase/imgbase/internal/image/verify"
)

// imageFlags are the flags of every command that installs an image.
type imageFlags struct {
	sha256, keysDir, signature string
	insecure                   bool
}

func (f *imageFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.sha256, "sha256", "", "expected SHA-256 of the image (default: IMAGE.sha256 when present)")
	fs.StringVar(&f.keysDir, "keys-dir", verify.DefaultKeysDir, "trusted public keys (*.pub): minisign for image files, cosign (PEM) for OCI images")
	fs.StringVar(&f.signature, "signature", "", "detached minisign signature (default: IMAGE.minisig)")
	fs.BoolVar(&f.insecure, "insecure", false, "accept an unsigned image even when keys are configured")
}

func (f *imageFlags) options() verify.Options {
	return verify.Options{SHA256: f.sha256, KeysDir: f.keysDir, Signature: f.signature, Insecure: f.insecure}
}

// progressFunc shows the image write on stderr: a bar on a terminal, plain
// lines otherwise, JSON lines with --json.
func (a *app) progressFunc() func(done, total int64) {
	var r *progress.Reporter
	return func(done, total int64) {
		if r == nil {
			r = progress.New(a.stderr, progress.ModeFor(a.stderr, a.json), "writing image", total)
		}
		r.Update(done)
		if done >= total {
			r.Finish()
		}
	}
}

func (a *app) updateCommand() *cobra.Command {
	var (
		format, sizeArg, nvrArg string
		img                     imageFlags
		check, autoReboot       bool
		delta                   deltaFlags
	)
	c := &cobra.Command{
		Use:   "update [--format raw|liveimg] [--check] [IMAGE]",
		Short: "Install an image as a new base with a first layer carrying the running configuration",
		Long: `update verifies IMAGE (sha256, minisign signature), checks there is room, installs it as a new
base, adds its first layer, carries the admin's /etc over from the running layer (three-way merge; a
conflict keeps the admin's file and puts the image's beside it as FILE.imgnew), gives the layer a boot
entry that is tried once, and then removes bases beyond images_to_keep.

IMAGE may be an OCI image (docker://REGISTRY/REPO:TAG, oci:DIR:TAG, oci-archive:FILE:TAG): its
layers are extracted into the new base. Without IMAGE, update follows the tracked image ([update] image,
see 'imgbase switch', else the image the running base came from) and does nothing when a base holds
it already. --check only says whether the tracked image now points to another digest.

When the running layer's base (of a raw or liveimg IMAGE) (or --from-base NVR) holds the image's filesystem type, the new base
is a thin snapshot of it on which only what differs from the image is rewritten: the pool grows by
the change, not by the image. --full writes the whole image instead; the output says which way was
taken and why.`,
		Example: `  imgbase update /var/tmp/node-4.5-1.squashfs.img        # oVirt Node liveimg (LiveOS/rootfs.img inside)
  imgbase update --format raw --sha256 3b1f… rootfs.img   # a raw ext4 or XFS filesystem image
  imgbase boot --status                                  # after the reboot: was the trial boot good?`,
		Args: cobra.RangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			arg := ""
			if len(args) == 1 {
				arg = args[0]
			}
			if _, oci, err := ociImage(arg); arg == "" || check || (err == nil && oci) {
				if format != "" {
					return usagef("--format is for image files, not %q", arg)
				}
				if err := delta.forOCI(); err != nil {
					return err
				}
				return a.ociUpdate(cmd.Context(), arg, ociUpdateOpts{size: sizeArg, nvr: nvrArg, keysDir: img.keysDir, insecure: img.insecure, check: check, autoReboot: autoReboot})
			}
			if format != "" && format != "raw" && format != "liveimg" {
				return usagef("unknown --format %q: use raw or liveimg", format)
			}
			bytes, err := parseOptionalSize(sizeArg)
			if err != nil {
				return err
			}
			s, err := a.open(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer s.close()
			keep, err := s.cfg.ImagesToKeep()
			if err != nil {
				return err
			}
			res, err := s.host.Update(cmd.Context(), host.UpdateRequest{
				ImageRequest: host.ImageRequest{Image: args[0], NVR: nvrArg, Size: bytes, Progress: a.progressFunc(), Verify: img.options(),
					Full: delta.full, FromBase: delta.fromBase},
				Format: format, Keep: keep,
			})
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(res)
			}
			if a.dry {
				return nil
			}
			a.printf("Installed base %s (%s) and layer %s; configuration carried from %s\n", res.Base.Base, res.Base.Way, res.Layer, res.From)
			if res.Migration != nil {
				a.printf("%s", res.Migration.Text())
			}
			for _, b := range res.Removed {
				a.printf("Removed old base %s\n", b)
			}
			a.printf("Reboot to try %s; if it does not come up, the next boot returns to %s\n", res.Layer, res.From)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&format, "format", "", "image format: raw (ext4/XFS) or liveimg (squashfs with LiveOS/rootfs.img); default: detect")
	f.StringVar(&sizeArg, "size", "", "size of the new base's LV (default: the image's filesystem size)")
	f.StringVar(&nvrArg, "nvr", "", "name of the new base (default: from the image's build metadata)")
	f.BoolVar(&check, "check", false, "say whether the tracked image (or IMAGE) points to a new digest; change nothing")
	f.BoolVar(&autoReboot, "auto-reboot", false, "after staging an OCI image, reboot into it when [update] auto_reboot = yes and no inhibitor blocks (imgbase-update.service)")
	img.register(f)
	delta.register(f)
	completeWords(c, "format", "raw", "liveimg")
	a.completeFlags(c, bases, "from-base")
	return c
}
