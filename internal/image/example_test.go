package image_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/imgbase/imgbase/internal/command"
	"github.com/imgbase/imgbase/internal/image"
	"github.com/imgbase/imgbase/internal/image/preflight"
	"github.com/imgbase/imgbase/internal/image/progress"
	"github.com/imgbase/imgbase/internal/image/sparse"
	"github.com/imgbase/imgbase/internal/image/verify"
)

// Example shows the order an update uses these packages in: trust, open,
// measure, check space, then write. Creating the LV (lvcreate) and the
// journal belong to the caller and are only marked here.
func Example() {
	ctx := context.Background()
	log := slog.Default()
	run := command.Exec{Log: log}
	path, jsonOut := "/var/tmp/node-4.5.6.squashfs.img", false
	const chunk = 64 << 10 // the pool's chunk_size from lvs

	fi, err := os.Stat(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	mode := progress.ModeFor(os.Stdout, jsonOut)
	pr := progress.New(os.Stdout, mode, "verifying", fi.Size())
	_, err = verify.Check(ctx, path, verify.Options{Progress: pr.Update})
	pr.Finish()
	if err != nil { // ErrChecksumMismatch, ErrUnsigned, ErrBadSignature…
		fmt.Println(err)
		return
	}

	im, err := image.Open(ctx, path, image.Env{Run: run, Mount: image.LoopMounter{Run: run}, Log: log})
	if err != nil { // ErrUnknownFormat, ErrTruncated, ErrCorrupt
		fmt.Println(err)
		return
	}
	defer im.Close()
	if err := im.Check(ctx); err != nil {
		fmt.Println(err)
		return
	}
	nvr, err := im.NVR(ctx) // or the NVR given on the command line
	if err != nil {
		fmt.Println(err)
		return
	}

	st, err := sparse.Scan(ctx, im.ReaderAt(), im.Size, chunk, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	err = preflight.Check(
		preflight.Pool{Name: "HostVG/pool00", Size: 100 << 30, MetadataSize: 1 << 30, DataPercent: 40, MetadataPercent: 10, Chunk: chunk},
		preflight.Boot{Free: 500 << 20, Needed: 90 << 20},
		preflight.Plan{FSSize: im.Size, LVSize: im.Size, ImageData: st.DataBytes(chunk), LayerData: 64 << 20, NewLVs: 2},
		nil)
	if err != nil { // ErrImageTooLarge, or *ShortageError (ErrNoSpace)
		fmt.Println(err)
		return
	}

	// … lvcreate the base "nvr", then open /dev/HostVG/<nvr> for writing:
	lv, err := os.OpenFile("/dev/HostVG/"+nvr, os.O_WRONLY, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer lv.Close()
	pr = progress.New(os.Stdout, mode, "writing "+nvr, im.Size)
	st, err = sparse.Write(ctx, lv, im.ReaderAt(), im.Size, chunk, pr.Update)
	pr.Finish()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s: %d of %d chunks written\n", nvr, st.DataChunks, st.Chunks)
}
