package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/imgbase/imgbase/internal/boot"
	"github.com/imgbase/imgbase/internal/host"
	"github.com/imgbase/imgbase/internal/layout"
	"github.com/imgbase/imgbase/internal/origin"
)

// ociUpdateOpts are the flags of update and switch that apply to an OCI
// image.
type ociUpdateOpts struct {
	size, nvr string
	keysDir   string // "": the default
	insecure  bool
	// check only says whether the image moved.
	check bool
	// track makes the image the one 'imgbase update' follows.
	track bool
	// autoReboot reboots after staging when [update] auto_reboot = yes.
	autoReboot bool
}

// ociUpdate updates from an OCI reference, or with arg "" from the tracked
// image: [update] image, else the image the running base came from.
func (a *app) ociUpdate(ctx context.Context, arg string, o ociUpdateOpts) error {
	bytes, err := parseOptionalSize(o.size)
	if err != nil {
		return err
	}
	s, err := a.open(ctx, !o.check)
	if err != nil {
		return err
	}
	defer s.close()
	tracked := arg == ""
	if tracked {
		if arg, err = a.trackedImage(ctx, s); err != nil {
			return err
		}
	}
	ref, oci, err := ociImage(arg)
	if err != nil {
		return err
	}
	if !oci {
		return usagef("cannot follow %s: tracking and --check take an image reference (docker://…, oci:…, oci-archive:…)", arg)
	}
	if bytes == 0 {
		if bytes, err = baseSize(s.cfg.Get); err != nil {
			return err
		}
	}
	req, err := a.ociRequest(s, ref, o.nvr, bytes, o.keysDir, o.insecure)
	if err != nil {
		return err
	}
	if o.check {
		res, err := s.host.CheckOCI(ctx, req)
		if err != nil {
			return err
		}
		if a.json {
			return a.printJSON(res)
		}
		a.printf("%s\n", checkLine(res))
		return nil
	}
	keep, err := s.cfg.ImagesToKeep()
	if err != nil {
		return err
	}
	res, err := s.host.UpdateFromOCI(ctx, host.OCIUpdateRequest{OCIRequest: req, Keep: keep, Track: o.track, SkipInstalled: tracked})
	if err != nil {
		return err
	}
	if a.json {
		return a.printJSON(res)
	}
	if a.dry {
		return nil
	}
	if res.Installed != "" {
		a.printf("Up to date: %s is %s, installed as base %s\n", res.Ref, res.Digest, res.Installed)
		return nil
	}
	a.printf("Installed base %s (%s, %s) and layer %s; configuration carried from %s\n", res.Base.Base, res.Ref, res.Digest, res.Layer, res.From)
	a.printf("Downloaded %d bytes, %d from the blob cache\n", res.Downloaded, res.FromCache)
	if res.Migration != nil {
		a.printf("%s", res.Migration.Text())
	}
	for _, b := range res.Removed {
		a.printf("Removed old base %s\n", b)
	}
	if o.track {
		a.printf("'imgbase update' follows %s from now on (%s)\n", res.Ref, "/"+host.TrackFile)
	}
	if o.autoReboot && autoReboot(s.cfg.Get) {
		if err := s.host.Reboot(ctx); err != nil {
			// The layer stays staged: the next reboot, whoever makes it,
			// tries it.
			s.host.Log.Warn("not rebooting into the new layer now", "layer", res.Layer, "err", err)
		} else {
			a.printf("Rebooting to try %s\n", res.Layer)
			return nil
		}
	}
	a.printf("Reboot to try %s; if it does not come up, the next boot returns to %s\n", res.Layer, res.From)
	return nil
}

// autoReboot reads "[update] auto_reboot" (yes/no; default no).
func autoReboot(get func(section, key string) (string, bool)) bool {
	v, _ := get("update", "auto_reboot")
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "yes", "true", "on", "1":
		return true
	}
	return false
}

// checkLine is update --check's one line.
func checkLine(r *host.CheckResult) string {
	if !r.Available {
		return "Up to date: " + r.Ref + " is " + r.Digest + ", installed as base " + r.Installed
	}
	from := ""
	if r.Running != "" {
		from = " (running base " + r.Running
		if r.RunningDigest != "" {
			from += " is " + r.RunningDigest
		}
		from += ")"
	}
	return "Update available: " + r.Ref + " is now " + r.Digest + from + "; 'imgbase update' would install base " + r.NVR
}

// trackedImage is the image 'imgbase update' follows: [update] image,
// else the reference the running base was built from.
func (a *app) trackedImage(ctx context.Context, s *session) (string, error) {
	if v, ok := s.cfg.Get("update", "image"); ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v), nil
	}
	o, ok, err := s.host.RunningOrigin(ctx)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", usagef("no image to update from: give one, or follow one with 'imgbase switch docker://…' ([update] image)")
	}
	return o.Ref, nil
}

// baseSize reads "[update] base_size", the size of a base built from an
// OCI image when --size is not given; 0 (unset) takes the running base's.
func baseSize(get func(section, key string) (string, bool)) (uint64, error) {
	v, _ := get("update", "base_size")
	n, err := parseOptionalSize(strings.TrimSpace(v))
	if err != nil {
		return 0, errf("cannot use [update] base_size = %q: %v", v, err)
	}
	return n, nil
}

func (a *app) switchCommand() *cobra.Command {
	var o ociUpdateOpts
	c := &cobra.Command{
		Use:   "switch IMAGE",
		Short: "Install an OCI image as a new base and follow it from then on",
		Long: `switch installs IMAGE (docker://, oci:, oci-archive:) the way update does, and makes it the image
that 'imgbase update' follows: it writes [update] image = IMAGE to /etc/imgbased.conf.d/50-image.conf,
in the new layer and in the running one.`,
		Example: `  imgbase switch docker://registry.example.com/os/node:4.6
  imgbase update --check     # later: has the tag moved?`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.track = true
			return a.ociUpdate(cmd.Context(), args[0], o)
		},
	}
	f := c.Flags()
	f.StringVar(&o.size, "size", "", "size of the new base's LV (default: [update] base_size, else the running base's size)")
	f.StringVar(&o.nvr, "nvr", "", "name of the new base (default: the image's imgbase.nvr label)")
	f.BoolVar(&o.insecure, "insecure", false, "accept an unsigned image even when keys are configured")
	return c
}

// statusImages is boot --status with the image each layer named in it
// came from.
type statusImages struct {
	boot.Status
	// Images maps a layer to the image its base was built from, for
	// layers whose base was built from an OCI image.
	Images map[string]origin.Origin `json:"images,omitempty"`
}

func (s statusImages) imagesText() string {
	var b strings.Builder
	for _, l := range slices.Sorted(maps.Keys(s.Images)) {
		o := s.Images[l]
		fmt.Fprintf(&b, "image of %s: %s (%s)\n", l, o.Ref, o.Digest)
	}
	return b.String()
}

// layerImages is the image each named layer's base came from.
func layerImages(t *layout.Tree, layers ...string) map[string]origin.Origin {
	out := map[string]origin.Origin{}
	for _, name := range layers {
		if l := t.Layer(name); name != "" && l != nil {
			if o, ok := origin.FromTags(l.Base.LV.Tags); ok {
				out[name] = o
			}
		}
	}
	return out
}
