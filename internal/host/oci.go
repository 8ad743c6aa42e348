package host

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/imgbase/imgbase/internal/blobcache"
	"github.com/imgbase/imgbase/internal/command"
	"github.com/imgbase/imgbase/internal/hooks"
	"github.com/imgbase/imgbase/internal/imageref"
	"github.com/imgbase/imgbase/internal/keyring"
	"github.com/imgbase/imgbase/internal/lvm"
	"github.com/imgbase/imgbase/internal/origin"
	"github.com/imgbase/imgbase/internal/pull"
	"github.com/imgbase/imgbase/internal/registry"
	"github.com/imgbase/imgbase/internal/signature"
	"github.com/imgbase/imgbase/internal/undo"
)

// OCIRequest asks for a base built from an OCI image (docker://, oci:,
// oci-archive:).
type OCIRequest struct {
	Ref imageref.Ref
	// NVR names the base; "" takes the image's imgbase.nvr label.
	NVR string
	// Size of the LV; required: an image does not say how large its
	// files are once unpacked.
	Size uint64
	// FSType of the new base: "ext4" (default) or "xfs".
	FSType   string
	Registry *registry.Client
	Cache    *blobcache.Cache // nil: no cache
	// Keys, when there is any of either kind, must have signed the
	// image (a cosign key), unless Insecure.
	Keys     keyring.Ring
	Insecure bool
	Progress func(done, total int64)
}

// OCIResult says what AddBaseFromOCI made.
type OCIResult struct {
	BaseResult
	Ref        string `json:"ref"`
	Digest     string `json:"digest"`
	Downloaded int64  `json:"downloaded"`
	FromCache  int64  `json:"from_cache"`
}

// AddBaseFromOCI builds a new sealed base from an OCI image: a thin LV, a
// fresh filesystem, the layers extracted in order as they stream in
// (internal/pull), the filesystem checked, the LV sealed. Every refusal
// about the image (unreachable, unauthorized, unknown, unsigned, no name)
// comes before anything is created; a failure later removes the LV.
func (h *Host) AddBaseFromOCI(ctx context.Context, req OCIRequest) (*OCIResult, error) {
	t, err := h.Managed(ctx)
	if err != nil {
		return nil, err
	}
	// Before the image is fetched or its signature judged: a usage error
	// costs no download and gets no warning about --insecure first.
	if req.Size == 0 {
		return nil, refuse("cannot add a base from %s: --size is required for an OCI image, e.g. --size 4G", req.Ref)
	}
	img, err := h.resolveOCI(ctx, req)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	name := req.NVR
	if name == "" {
		n, err := pull.NVR(img, "")
		if err != nil {
			return nil, refuse("%v", err)
		}
		name = n.String()
	}
	if err := checkNewBase(t, name); err != nil {
		return nil, err
	}
	// The layers must at least fit, compressed as they are.
	if free := t.Pool.DataFree(); uint64(img.Size()) > free {
		return nil, refuse("cannot add base %s from %s: %v in pool %s: its layers alone are %dM, %dM free",
			name, req.Ref, ErrNoSpace, t.Pool.Name, img.Size()>>20, free>>20)
	}
	fstype := req.FSType
	if fstype == "" {
		fstype = "ext4"
	}
	if fstype != "ext4" && fstype != "xfs" {
		return nil, refuse("cannot add base %s: filesystem %q is not supported (use ext4 or xfs)", name, fstype)
	}
	if err := h.preHook(ctx, hooks.BaseAdd, name); err != nil {
		return nil, err
	}
	u := &undo.Stack{Log: h.Log}
	res, err := h.buildOCIBase(ctx, u, t.VG, t.Pool.Name, name, fstype, img, req)
	if err != nil {
		return nil, u.Rollback(ctx, err)
	}
	h.postHook(ctx, hooks.BaseAdd, name)
	return res, nil
}

func (h *Host) buildOCIBase(ctx context.Context, u *undo.Stack, vg, pool, name, fstype string, img *registry.Image, req OCIRequest) (*OCIResult, error) {
	res := &OCIResult{BaseResult: BaseResult{Base: name, Size: req.Size, FSType: fstype}, Ref: req.Ref.String(), Digest: img.Digest}
	h.Log.Info("adding base", "base", name, "image", req.Ref.String(), "digest", img.Digest, "size", req.Size)
	tags := append([]string{lvm.TagBase}, origin.Tags(origin.Origin{Ref: req.Ref.String(), Digest: img.Digest})...)
	if err := h.LVM().CreateThin(ctx, vg, pool, name, req.Size, tags); err != nil {
		return nil, err
	}
	u.Push("create "+name, func(ctx context.Context) error { return h.LVM().Remove(ctx, vg, name) })
	dev := "/dev/" + vg + "/" + name
	if err := h.fillOCIBase(ctx, dev, h.MountPoint(name), fstype, img, req, res); err != nil {
		return nil, err
	}
	if err := h.LVM().Seal(ctx, vg, name); err != nil {
		return nil, err
	}
	return res, nil
}

// fillOCIBase makes a fresh filesystem on dev, extracts the image's layers
// into it mounted at mnt, and checks it. It leaves nothing mounted.
func (h *Host) fillOCIBase(ctx context.Context, dev, mnt, fstype string, img *registry.Image, req OCIRequest, res *OCIResult) error {
	// A new thin LV holds no blocks: nothing to discard.
	mkfs := command.Change("mkfs.ext4", "-q", "-E", "nodiscard", "-O", "metadata_csum_seed", dev)
	if fstype == "xfs" {
		mkfs = command.Change("mkfs.xfs", "-q", "-K", dev)
	}
	if _, err := h.Run.Run(ctx, mkfs); err != nil {
		return fmt.Errorf("cannot make a filesystem on %s: %w", dev, err)
	}
	if err := h.Mkdir(mnt); err != nil {
		return err
	}
	if err := h.FS().WorkMount(ctx, dev, mnt, fstype); err != nil {
		return err
	}
	if h.Dry() {
		fmt.Fprintf(h.Out, "# extract the %d layers of %s (%s) into %s\n", len(img.Layers), req.Ref, img.Digest, mnt)
	} else {
		var progress func(pull.Progress)
		if req.Progress != nil {
			progress = func(p pull.Progress) { req.Progress(p.Done, p.Total) }
		}
		pres, err := pull.Extract(ctx, img, mnt, pull.Options{Cache: req.Cache, Progress: progress, Logger: h.Log})
		if err == nil {
			err = syncFS(mnt)
		}
		if err != nil {
			if uerr := h.FS().WorkUnmount(ctx, mnt); uerr != nil {
				err = errors.Join(err, uerr)
			}
			return err
		}
		res.Downloaded, res.FromCache, res.Written = pres.Downloaded, pres.FromCache, pres.Written
	}
	if err := h.FS().WorkUnmount(ctx, mnt); err != nil {
		return err
	}
	if !h.Dry() {
		os.Remove(mnt)
	}
	if err := h.FS().Check(ctx, dev, fstype); err != nil {
		return refuse("%v", err)
	}
	return nil
}

// resolveOCI resolves req.Ref and, when keys are configured, checks the
// image's signature. Every refusal comes before anything is created.
func (h *Host) resolveOCI(ctx context.Context, req OCIRequest) (*registry.Image, error) {
	img, err := req.Registry.Resolve(ctx, req.Ref)
	if err != nil {
		return nil, refuse("%v", err)
	}
	if req.Keys.Len() > 0 {
		var sigs []signature.Signature
		if len(req.Keys.Cosign) > 0 {
			if sigs, err = req.Registry.Signatures(ctx, img, img.Digest); err != nil {
				img.Close()
				return nil, refuse("%v", err)
			}
		}
		if key, err := signature.Verify(req.Ref.String(), img.Digest, req.Keys.Cosign, sigs); err != nil {
			if !req.Insecure {
				img.Close()
				return nil, refuse("%v", err)
			}
			h.Log.Warn("installing an image without a trusted signature (--insecure)", "image", req.Ref.String(), "err", err)
		} else {
			h.Log.Info("image signature verified", "image", req.Ref.String(), "key", key)
		}
	}
	return img, nil
}
