package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbase/imgbase/internal/command"
	"github.com/imgbase/imgbase/internal/command/commandtest"
	"github.com/imgbase/imgbase/internal/system"
)

// makeExt4 makes a raw ext4 image of size MiB in a temp dir.
func makeExt4(t *testing.T, mib int) string {
	t.Helper()
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("mkfs.ext4 is not installed (apt-get install e2fsprogs)")
	}
	p := filepath.Join(t.TempDir(), "rootfs.img")
	f, _ := os.Create(p)
	f.Truncate(int64(mib) << 20)
	f.Close()
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", p).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v %s", err, out)
	}
	return p
}

// passReads answers lvs and blkid from the recorder, runs the other
// read-only commands (e2fsck -fn and debugfs on image files) for real, and
// records every mutating command without running it.
type passReads struct{ rec *commandtest.Recorder }

func (p passReads) Run(ctx context.Context, c command.Cmd) ([]byte, error) {
	if c.Mutating || c.Argv[0] == "lvs" || c.Argv[0] == "blkid" {
		return p.rec.Run(ctx, c)
	}
	return command.Exec{}.Run(ctx, c)
}

func TestUpdateRefusalsCreateNothing(t *testing.T) {
	img := makeExt4(t, 64)
	zeros := filepath.Join(t.TempDir(), "zeros.img")
	os.WriteFile(zeros, make([]byte, 1<<20), 0o644)
	truncated := filepath.Join(t.TempDir(), "short.img")
	data, _ := os.ReadFile(img)
	os.WriteFile(truncated, data[:8<<20], 0o644)
	for _, tc := range []struct {
		name   string
		report string
		minor  int
		req    UpdateRequest
		want   string
	}{
		{"not on a layer", "running", 99, UpdateRequest{ImageRequest: ImageRequest{Image: img, NVR: "Base-3-0"}}, "not on a layer"},
		{"unknown format", "running", 5, UpdateRequest{ImageRequest: ImageRequest{Image: zeros, NVR: "Base-3-0"}}, "unknown image format"},
		{"truncated", "running", 5, UpdateRequest{ImageRequest: ImageRequest{Image: truncated, NVR: "Base-3-0"}}, "truncated"},
		{"missing", "running", 5, UpdateRequest{ImageRequest: ImageRequest{Image: "/nonexistent.img", NVR: "Base-3-0"}}, "no such file"},
		{"too large for size", "running", 5, UpdateRequest{ImageRequest: ImageRequest{Image: img, NVR: "Base-3-0", Size: 32 << 20}}, "larger than"},
		{"wrong format", "running", 5, UpdateRequest{ImageRequest: ImageRequest{Image: img, NVR: "Base-3-0"}, Format: "liveimg"}, "not liveimg"},
		{"malformed checksum", "running", 5, UpdateRequest{ImageRequest: ImageRequest{Image: img, NVR: "Base-3-0"}}, "not a sha256 digest"},
		{"pool full", "full", 5, UpdateRequest{ImageRequest: ImageRequest{Image: img, NVR: "Base-3-0"}}, "not enough space"},
		{"name taken", "running", 5, UpdateRequest{ImageRequest: ImageRequest{Image: img, NVR: "Base-2-0"}}, "exists"},
		// The running layer's kernel files take 30 MiB of /boot; 20 are
		// free; Base-2-0's layer has 25 MiB of its own.
		{"boot full", "running", 5, UpdateRequest{ImageRequest: ImageRequest{Image: img, NVR: "Base-3-0"}}, "/boot: need 30.0 MiB, free 20.0 MiB, remove Base-2-0"},
		// A base whose layer boots by default is not offered for removal
		// ('imgbase base --remove' would refuse it).
		{"boot full, Base-2-0 boots", "running", 5, UpdateRequest{ImageRequest: ImageRequest{Image: img, NVR: "Base-3-0"}}, "/boot: need 30.0 MiB, free 20.0 MiB, free space on /boot"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.report, 254, tc.minor)
			f.h.Run = passReads{f.rec}
			if tc.name == "malformed checksum" {
				tc.req.Verify.SHA256 = strings.Repeat("0", 63)
			}
			if strings.HasPrefix(tc.name, "boot full") {
				sized(t, filepath.Join(f.h.Root, "boot/Base-1-0+1/vmlinuz-6.1"), 10<<20)
				sized(t, filepath.Join(f.h.Root, "boot/Base-1-0+1/initrd.img-6.1"), 20<<20)
				sized(t, filepath.Join(f.h.Root, "boot/Base-2-0+1/vmlinuz-6.0"), 25<<20)
				f.h.Usage = func(p string) (system.Usage, error) {
					if p != filepath.Join(f.h.Root, "boot") {
						t.Errorf("measured %s, want /boot", p)
					}
					return system.Usage{Size: 200 << 20, Free: 20 << 20}, nil
				}
			}
			if tc.name == "boot full, Base-2-0 boots" {
				f.h.Boot = &fakeBoot{def: "Base-2-0+1"}
			}
			tc.req.Verify.KeysDir = t.TempDir()
			_, err := f.h.Update(context.Background(), tc.req)
			var r *ErrRefused
			if !errors.As(err, &r) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a refusal containing %q", err, tc.want)
			}
			if m := f.rec.Mutations(); len(m) != 0 {
				t.Errorf("a refusal ran %v", m)
			}
		})
	}
}

// A filesystem that fails its check is refused; what was made is removed.
func TestCorruptImageLeavesNothing(t *testing.T) {
	img := makeExt4(t, 16)
	if out, err := exec.Command("debugfs", "-w", "-R", "clri <2>", img).CombinedOutput(); err != nil {
		t.Skipf("debugfs: %v %s", err, out)
	}
	for _, update := range []bool{false, true} {
		f, _, req := updateFixture(t)
		req.Image = img
		var err error
		if update {
			_, err = f.h.Update(context.Background(), req)
		} else {
			_, err = f.h.AddBaseFromImage(context.Background(), req.ImageRequest)
		}
		if err == nil || !strings.Contains(err.Error(), "corrupt") {
			t.Fatalf("update=%v: err = %v", update, err)
		}
		m := f.rec.Mutations()
		created, removed := 0, 0
		for _, line := range m {
			if strings.HasPrefix(line, "lvcreate") {
				created++
			}
			if line == "lvremove --yes HostVG/Base-3-0" {
				removed++
			}
		}
		if created != removed {
			t.Errorf("update=%v: created %d, removed %d: %v", update, created, removed, m)
		}
	}
}

// A raw image is digested in the read that writes it: a mismatch is found
// after the base was written, which is then removed, with a one-line
// refusal. The digest covers the whole file, bytes past the filesystem too.
func TestChecksumMismatchUndoesTheBase(t *testing.T) {
	for _, update := range []bool{false, true} {
		for _, tail := range []bool{false, true} {
			f, _, req := updateFixture(t)
			if tail {
				// The file's last byte is past the filesystem: the write
				// does not read it, the digest must.
				fh, _ := os.OpenFile(req.Image, os.O_WRONLY|os.O_APPEND, 0)
				fh.Write([]byte("tail"))
				fh.Close()
			}
			data, _ := os.ReadFile(req.Image)
			good := sha256.Sum256(data)
			data[len(data)-1] ^= 1
			bad := sha256.Sum256(data)
			run := func(digest [32]byte) error {
				req.Verify.SHA256 = hex.EncodeToString(digest[:])
				if update {
					_, err := f.h.Update(context.Background(), req)
					return err
				}
				_, err := f.h.AddBaseFromImage(context.Background(), req.ImageRequest)
				return err
			}
			err := run(bad)
			var r *ErrRefused
			if !errors.As(err, &r) || !strings.Contains(err.Error(), "checksum does not match") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("update=%v tail=%v: err = %v, want a one-line checksum refusal", update, tail, err)
			}
			m := f.rec.Mutations()
			created, removed := 0, 0
			for _, line := range m {
				if strings.HasPrefix(line, "lvcreate") {
					created++
				}
				if line == "lvremove --yes HostVG/Base-3-0" {
					removed++
				}
			}
			if created == 0 || created != removed {
				t.Errorf("update=%v tail=%v: created %d, removed %d: %v", update, tail, created, removed, m)
			}
			if update {
				continue // the fixture's journal now holds the undone update
			}
			if err := run(good); err != nil {
				t.Errorf("tail=%v: the right digest was refused: %v", tail, err)
			}
		}
	}
}

// sized makes a sparse file of size bytes at p.
func sized(t *testing.T, p string, size int64) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
}

// With lvm.conf's autoextend on and room in the volume group, a pool too
// full for the update is grown first instead of refusing.
func TestUpdateGrowsThePoolWithinAutoextend(t *testing.T) {
	img := makeExt4(t, 64)
	f := newFixture(t, "full", 254, 5)
	f.h.Run = passReads{f.rec}
	os.MkdirAll(filepath.Join(f.h.Root, "etc/lvm"), 0o755)
	os.WriteFile(filepath.Join(f.h.Root, "etc/lvm/lvm.conf"), []byte("activation {\n\tthin_pool_autoextend_threshold = 70\n}\n"), 0o644)
	req := UpdateRequest{ImageRequest: ImageRequest{Image: img, NVR: "Base-3-0", Full: true}}
	req.Verify.KeysDir = t.TempDir()
	_, err := f.h.Update(context.Background(), req)
	m := f.rec.Mutations()
	if len(m) == 0 || !strings.HasPrefix(m[0], "lvextend --size +") || !strings.HasSuffix(m[0], " HostVG/pool00") {
		t.Fatalf("first change %q (of %d; update: %v), want lvextend of the pool", m, len(m), err)
	}
	if len(m) < 2 || !strings.HasPrefix(m[1], "lvcreate --thin") {
		t.Errorf("after growing the pool: %q, want the base created", m)
	}
}
