package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/imgbase/imgbase/internal/boot"
	"github.com/imgbase/imgbase/internal/command"
	"github.com/imgbase/imgbase/internal/journal"
	"github.com/imgbase/imgbase/internal/layout"
	"github.com/imgbase/imgbase/internal/lvm"
	"github.com/imgbase/imgbase/internal/undo"
)

// JournalFile is where an update records its steps, under the running root.
const JournalFile = "var/lib/imgbase/journal.json"

// The kinds of journal steps. A kind's Undo works from the step's Args
// alone, so that another process ('imgbase recover', at boot) can take a
// crashed update back.
const (
	stepCreateBase   = "create-base"
	stepWriteImage   = "write-image"
	stepSealBase     = "seal-base"
	stepCreateLayer  = "create-layer"
	stepPrepareLayer = "prepare-layer"
	stepBootEntry    = "boot-entry"
	stepRemoveBase   = "remove-base"
	stepRemoveEntry  = "remove-entries"
	stepRemoveLVs    = "remove-lvs"
)

func (h *Host) journal() *journal.Journal {
	j := &journal.Journal{Path: h.Path(JournalFile), Kinds: h.kinds(), Log: h.Log, Root: h.RootUUID()}
	if h.Dry() {
		j.DryOut = h.Out
	}
	return j
}

// Recover finishes or undoes an update a crash interrupted. It returns nil
// when there was nothing to do.
func (h *Host) Recover(ctx context.Context) (*journal.Outcome, error) {
	return h.journal().Recover(ctx)
}

func (h *Host) kinds() journal.Kinds {
	c := h.LVM()
	k := journal.Kinds{
		stepCreateBase: {
			Do: func(ctx context.Context, a journal.Args) error {
				size, err := strconv.ParseUint(a["size"], 10, 64)
				if err != nil {
					return fmt.Errorf("cannot read the size in the journal: %w", err)
				}
				return c.CreateThin(ctx, a["vg"], a["pool"], a["lv"], size, []string{lvm.TagBase})
			},
			Undo: h.removeIfExists,
		},
		// The old base mounted for the merge is released by whichever
		// step fails; both release it if it is there.
		stepWriteImage:   {Undo: h.releaseSource},
		stepExtractImage: {Undo: h.undoExtract},
		// Journals from before sealing moved into prepare-layer have it.
		stepSealBase: {Do: func(ctx context.Context, a journal.Args) error {
			return c.Seal(ctx, a["vg"], a["lv"])
		}},
		stepCreateLayer: {
			Do: func(ctx context.Context, a journal.Args) error {
				return c.Snapshot(ctx, a["vg"], a["origin"], a["lv"], lvm.SnapshotOpts{Tags: []string{lvm.TagLayer}, Activate: true})
			},
			Undo: func(ctx context.Context, a journal.Args) error {
				if err := h.unmountIfMounted(ctx, a["mnt"]); err != nil {
					return err
				}
				return h.removeIfExists(ctx, a)
			},
		},
		stepPrepareLayer: {Undo: func(ctx context.Context, a journal.Args) error {
			return errors.Join(h.unmountIfMounted(ctx, a["mnt"]), h.releaseSource(ctx, a))
		}},
		stepBootEntry: {
			Do:   h.bootEntryStep,
			Undo: func(ctx context.Context, a journal.Args) error { return h.removeBootEntry(ctx, a["lv"]) },
		},
		stepRemoveBase: {Do: func(ctx context.Context, a journal.Args) error { return h.collectStep(ctx, nil, a) }},
	}
	// base --remove and layer --remove: after their checks they are
	// committed at once, and an interrupted removal is finished, entries
	// first, so that no entry is ever left naming a removed LV.
	k[stepRemoveEntry] = journal.Kind{Do: func(ctx context.Context, a journal.Args) error {
		return h.removeEntries(ctx, splitNames(a["layers"]))
	}}
	k[stepRemoveLVs] = journal.Kind{Do: h.removeLVsLeft}
	h.deltaKinds(k)
	return k
}

// collectStep removes an old base after an update's commit, checked
// against t (nil reads the layout).
func (h *Host) collectStep(ctx context.Context, t *layout.Tree, a journal.Args) error {
	err := h.collectBase(ctx, t, a["lv"])
	var r *ErrRefused
	if errors.As(err, &r) {
		// Gone already, or running or booting by default now: keeping a
		// base is always safe.
		h.Log.Info("keeping old base", "base", a["lv"], "why", r.Reason)
		return nil
	}
	return err
}

// collectSteps are the steps after an update's commit that remove the old
// bases. They check each removal against t, the layout the update read
// before it began, which still holds every old base and layer as they are
// (the update added a base and a layer of its own, nothing else): one lvs
// spared. Recover, finishing one, reads the layout afresh.
func (h *Host) collectSteps(t *layout.Tree, old []string) []journal.Step {
	var steps []journal.Step
	for _, name := range old {
		a := journal.Args{"vg": t.VG, "lv": name}
		steps = append(steps, journal.Step{Kind: stepRemoveBase, Args: a, Do: func(ctx context.Context) error {
			return h.collectStep(ctx, t, a)
		}})
	}
	return steps
}

// removalTx removes layers' boot entries, then the LVs (layers and, for a
// base, the base). It has nothing to undo: its checks came before it.
func (h *Host) removalTx(name, vg string, layers, lvs []string) journal.Tx {
	return journal.Tx{Name: name, AfterCommit: []journal.Step{
		{Kind: stepRemoveEntry, Args: journal.Args{"layers": strings.Join(layers, ",")}},
		// The LVs all exist when the step first runs: one lvremove, no lvs.
		{Kind: stepRemoveLVs, Args: journal.Args{"vg": vg, "lvs": strings.Join(lvs, ",")}, Do: func(ctx context.Context) error {
			return h.LVM().Remove(ctx, vg, lvs...)
		}},
	}}
}

// removeEntries removes the boot entries of layers; one already gone is
// fine (a removal finished after a crash, or a layer that never had one).
func (h *Host) removeEntries(ctx context.Context, layers []string) error {
	for _, l := range layers {
		if err := h.removeBootEntry(ctx, l); err != nil && !errors.Is(err, boot.ErrNoEntry) {
			return err
		}
	}
	return nil
}

// removeLVsLeft removes those of the LVs in a["lvs"] that still exist:
// finishing a removal a crash cut short.
func (h *Host) removeLVsLeft(ctx context.Context, a journal.Args) error {
	all, err := h.LVM().Report(ctx)
	if err != nil {
		return err
	}
	exists := map[string]bool{}
	for _, lv := range all {
		if lv.VG == a["vg"] {
			exists[lv.Name] = true
		}
	}
	var left []string
	for _, n := range splitNames(a["lvs"]) {
		if exists[n] {
			left = append(left, n)
		}
	}
	if len(left) == 0 {
		return nil
	}
	return h.LVM().Remove(ctx, a["vg"], left...)
}

func splitNames(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// prepareNewLayer prepares a layer created by a journal step from a base
// just written from a checked image: new UUID, the fill (carried
// configuration), fstab. Its boot entry is a later step.
func (h *Host) prepareNewLayer(ctx context.Context, t *layout.Tree, base *layout.Base, name string, fill func(context.Context, string) error) error {
	dev := "/dev/" + t.VG + "/" + name
	fstype, err := h.layerFSType(ctx, t, base.Name(), dev)
	if err != nil {
		return err
	}
	if fstype == "" {
		return fmt.Errorf("cannot prepare layer %s: its base holds no filesystem", name)
	}
	return h.prepareLayer(ctx, &undo.Stack{Log: h.Log}, t, base, name, dev, fstype, layerSetup{fill: fill, noBoot: true, clean: true})
}

// bootEntryStep writes a layer's boot entry from the journal's Args. The
// kernel is read from the layer: still mounted by the step that prepared
// it, or mounted read-only again (by 'imgbase recover').
func (h *Host) bootEntryStep(ctx context.Context, a journal.Args) error {
	vg, name, mnt := a["vg"], a["lv"], a["mnt"]
	if h.Boot == nil {
		// Nothing to write; the layer the step before left mounted goes.
		if err := h.unmountIfMounted(ctx, mnt); err != nil {
			return err
		}
		if !h.Dry() {
			os.Remove(mnt)
		}
		return nil
	}
	dev := "/dev/" + vg + "/" + name
	// An update's layer is on the newest base; journals from before
	// "latest" was recorded are updates.
	bl := BootLayer{Name: name, Base: a["base"], VG: vg, Dev: dev, Mnt: mnt, Try: a["try"] == "y", Latest: a["latest"] != "n"}
	if h.Dry() {
		return h.Boot.AddLayer(ctx, bl)
	}
	if !h.MountedAt(mnt) {
		if err := h.Mkdir(mnt); err != nil {
			return err
		}
		fstype, err := h.FS().Type(ctx, dev)
		if err != nil {
			return err
		}
		opts := []string{"ro", "noload"}
		if fstype == "xfs" {
			opts = []string{"ro", "norecovery", "nouuid"}
		}
		if err := h.FS().WorkMount(ctx, dev, mnt, fstype, opts...); err != nil {
			return err
		}
	}
	err := h.Boot.AddLayer(ctx, bl)
	if uerr := h.FS().WorkUnmount(ctx, mnt); err == nil {
		err = uerr
	}
	if err == nil {
		os.Remove(mnt)
	}
	return err
}

func (h *Host) removeBootEntry(ctx context.Context, name string) error {
	if h.Boot == nil {
		return nil
	}
	return h.Boot.RemoveLayer(ctx, name)
}

// removeIfExists removes an LV; one that is not there is fine (an undo
// may run after a crash before its creation).
func (h *Host) removeIfExists(ctx context.Context, a journal.Args) error {
	err := h.LVM().Remove(ctx, a["vg"], a["lv"])
	var ce *command.Error
	if errors.As(err, &ce) && (strings.Contains(ce.Stderr, "Failed to find") || strings.Contains(ce.Stderr, "not found")) {
		return nil
	}
	return err
}

// unmountIfMounted unmounts dir when something is mounted on it.
func (h *Host) unmountIfMounted(ctx context.Context, dir string) error {
	if dir == "" || h.Dry() || !h.MountedAt(dir) {
		return nil
	}
	return h.FS().WorkUnmount(ctx, dir)
}
