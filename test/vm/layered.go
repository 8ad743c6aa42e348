//go:build vm

package vm

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/imgbase/imgbase/test/vm/wire"
)

// Most tests begin where an admin begins: `imgbase layout --init` on the
// freshly installed host, then a reboot into the first layer. Under TCG
// that costs a boot, the init and a reboot (about two and a half minutes
// with two guests running) in every test. BootLayered does it once per
// host image and package instead: the first test that asks prepares a
// qcow2 overlay of the host image on which the init ran, the first layer
// booted (its trial judged good) and the guest powered off cleanly, keeps
// it in IMGBASE_CACHE, and every test boots its own overlay of that.
// The init and the first reboot themselves stay proven where they are
// the subject (TestSeedInitImage, TestSeedInitFrom, TestBootIntoLayer).

// layeredRecipe changes whenever prepareLayered does something else, so
// that an image prepared the old way is not reused.
const layeredRecipe = "layout --init; reboot into +1; wait started; poweroff v1"

// FirstLayer is the layer BootLayered's guest runs.
const FirstLayer = "imgbase-test-1.0-1+1" // the host image is v1 (nvr1)

var layeredMu sync.Mutex // one preparation per test process

// BootLayered boots a guest that runs FirstLayer of an initialised host.
func BootLayered(t testing.TB) *Guest {
	t.Helper()
	return bootLayered(t, "")
}

func bootLayered(t testing.TB, cache string) *Guest {
	t.Helper()
	layered := layeredDisk(t, hostDisk(t))
	g := bootDisk(t, Options{Disk: layered, DiskFormat: "qcow2", Cache: cache})
	g.ExpectBooted(g.Booted(), FirstLayer, "the prepared host (after layout --init)")
	return g
}

// layeredDisk returns the prepared image for disk and the package under
// test, preparing it if no test (of this run or an earlier one) has.
func layeredDisk(t testing.TB, disk string) string {
	t.Helper()
	key, err := layeredKey(disk, debUnderTest(t).BinMD5)
	if err != nil {
		t.Fatal(err)
	}
	cache := os.Getenv("IMGBASE_CACHE")
	if cache == "" {
		cache = filepath.Dir(filepath.Dir(disk))
	}
	out := filepath.Join(cache, "layered-"+key, "disk.qcow2")
	layeredMu.Lock()
	defer layeredMu.Unlock()
	if _, err := os.Stat(out); err == nil {
		touch(filepath.Dir(out))
		return out
	}
	// Another test process (a second `go test`) may be preparing it.
	lock, err := os.OpenFile(filepath.Join(cache, "layered-"+key+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		t.Fatalf("cannot lock %s: %v", lock.Name(), err)
	}
	if _, err := os.Stat(out); err == nil {
		touch(filepath.Dir(out))
		return out
	}
	pruneLayered(cache, key)
	start := time.Now()
	tmp := prepareLayered(t, disk)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := copyFile(tmp, out+".tmp"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(out+".tmp", out); err != nil {
		t.Fatal(err)
	}
	t.Logf("prepared the initialised host %s in %s", out, time.Since(start).Round(time.Second))
	return out
}

// pruneLayered removes prepared images other than key's that nothing has
// used for a day (each holds about a gigabyte: every build of the package
// makes a new one); a younger one may belong to a run still going.
func pruneLayered(cache, key string) {
	dirs, _ := filepath.Glob(filepath.Join(cache, "layered-*"))
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err != nil || !fi.IsDir() || filepath.Base(d) == "layered-"+key || time.Since(fi.ModTime()) < 24*time.Hour {
			continue
		}
		os.RemoveAll(d)
		os.Remove(d + ".lock")
	}
}

// layeredKey names a prepared image by what it is made of: the host
// image (path, size and time: it is rebuilt in place only by a new key
// of its own), the package's binary and the recipe.
func layeredKey(disk, debMD5 string) (string, error) {
	fi, err := os.Stat(disk)
	if err != nil {
		return "", fmt.Errorf("cannot stat the host image: %w", err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%d\n%d\n%s\n%s\n", disk, fi.Size(), fi.ModTime().UnixNano(), debMD5, layeredRecipe)
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// prepareLayered runs the recipe on a fresh guest and returns its overlay
// once QEMU has exited (the overlay is whole).
func prepareLayered(t testing.TB, disk string) string {
	t.Helper()
	g := bootDisk(t, Options{Disk: disk, LogSuffix: "-prepare"})
	g.Imgbase("layout", "--init")
	g.ExpectBooted(g.Reboot(), FirstLayer, "preparing the initialised host: after layout --init")
	if s := g.WaitStarted(); s != "active success" {
		t.Fatalf("preparing the initialised host: the first boot of %s ended with imgbase-boot-success.service %q", FirstLayer, s)
	}
	if _, err := g.Do(wire.Request{Op: wire.OpPoweroff}, 30*time.Second); err != nil {
		t.Fatalf("cannot power the prepared host off: %v", err)
	}
	if err := g.Machine.WaitExit(3 * time.Minute); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(g.Machine.Options().Dir, "disk.qcow2")
}

// touch marks a prepared image as used, for pruneLayered.
func touch(dir string) {
	now := time.Now()
	os.Chtimes(dir, now, now)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
