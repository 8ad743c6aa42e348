package image_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbase/imgbase/internal/command"
	"github.com/imgbase/imgbase/internal/image"
	"github.com/imgbase/imgbase/internal/image/sparse"
	"github.com/imgbase/imgbase/internal/image/verify"
)

// TestLiveImgToLoopDevice runs the whole input chain the way an update
// does: a liveimg with a .sha256 beside it is verified, opened through
// real loop mounts, scanned, and written sparsely onto a loop device
// standing in for a fresh thin LV (a sparse file reads zeros where
// nothing was written). The device must then hold a filesystem that
// passes e2fsck and still names its NVR.
func TestLiveImgToLoopDevice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("loop devices need root")
	}
	for _, tool := range []string{"mkfs.ext4", "mksquashfs", "debugfs", "e2fsck", "losetup", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	sh := func(argv ...string) string {
		t.Helper()
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	dir := t.TempDir()
	content := filepath.Join(dir, "content")
	rootfs := filepath.Join(dir, "rootfs")
	os.MkdirAll(filepath.Join(rootfs, "usr/share/imgbase/build/meta"), 0o755)
	os.WriteFile(filepath.Join(rootfs, image.NVRPath), []byte("Base-2-0\n"), 0o644)
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(i*7 + 1)
	}
	os.WriteFile(filepath.Join(rootfs, "payload"), big, 0o644)
	os.MkdirAll(filepath.Join(content, "LiveOS"), 0o755)
	inner := filepath.Join(content, image.RootfsPath)
	f, _ := os.Create(inner)
	f.Truncate(64 << 20)
	f.Close()
	sh("mkfs.ext4", "-q", "-F", "-d", rootfs, inner)
	sq := filepath.Join(dir, "node.squashfs.img")
	sh("mksquashfs", content, sq, "-noappend", "-quiet", "-no-progress")
	sum := sha256.New()
	sf, _ := os.Open(sq)
	io.Copy(sum, sf)
	sf.Close()
	os.WriteFile(sq+".sha256", []byte(hex.EncodeToString(sum.Sum(nil))+"  node.squashfs.img\n"), 0o644)

	ctx := context.Background()
	res, err := verify.Check(ctx, sq, verify.Options{KeysDir: filepath.Join(dir, "nokeys")})
	if err != nil || res.SHA256 == "" {
		t.Fatalf("verify: %+v, %v", res, err)
	}
	run := command.Exec{}
	im, err := image.Open(ctx, sq, image.Env{Run: run, Mount: image.LoopMounter{Run: run, TempDir: dir}})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	const chunk = 64 << 10
	scan, err := sparse.Scan(ctx, im.ReaderAt(), im.Size, chunk, nil)
	if err != nil {
		t.Fatal(err)
	}

	lvFile := filepath.Join(dir, "lv")
	lf, _ := os.Create(lvFile)
	lf.Truncate(80 << 20)
	lf.Close()
	loop := sh("losetup", "-f", "--show", lvFile)
	defer exec.Command("losetup", "-d", loop).Run()
	dev, err := os.OpenFile(loop, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sparse.Write(ctx, dev, im.ReaderAt(), im.Size, chunk, nil)
	dev.Close()
	if err != nil {
		t.Fatal(err)
	}
	if st != scan {
		t.Fatalf("Write %+v differs from Scan %+v", st, scan)
	}
	// The 3 MiB payload and the filesystem's metadata are data; most of
	// the 64 MiB filesystem is not.
	if st.NonZero < 3<<20 || st.DataBytes(chunk) > 16<<20 || st.DataBytes(chunk) < st.NonZero {
		t.Fatalf("implausible stats %+v", st)
	}
	t.Logf("64 MiB ext4 in a liveimg: %d of %d chunks hold data (%d bytes in the pool), %d bytes in non-zero 4 KiB blocks", st.DataChunks, st.Chunks, st.DataBytes(chunk), st.NonZero)
	sh("e2fsck", "-fn", loop)
	if got := sh("debugfs", "-R", "cat "+image.NVRPath, loop); !strings.HasSuffix(got, "Base-2-0") {
		t.Fatalf("NVR on the device: %q", got)
	}
	var fi os.FileInfo
	if fi, err = os.Stat(lvFile); err != nil || fi.Size() != 80<<20 {
		t.Fatalf("backing file: %v %v", fi, err)
	}
}
