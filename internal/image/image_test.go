package image

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbase/imgbase/internal/command"
	"github.com/imgbase/imgbase/internal/command/commandtest"
)

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (apt-get install e2fsprogs xfsprogs squashfs-tools)", tool)
		}
	}
}

func run(t *testing.T, argv ...string) {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
}

// tree writes files (path → content) under a new directory.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// mkExt4 makes an ext4 image of size bytes holding files.
func mkExt4(t *testing.T, path string, size int64, files map[string]string) {
	t.Helper()
	need(t, "mkfs.ext4")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
	run(t, "mkfs.ext4", "-q", "-F", "-b", "4096", "-d", tree(t, files), path)
}

func mkXFS(t *testing.T, path string, size int64) {
	t.Helper()
	need(t, "mkfs.xfs")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
	run(t, "mkfs.xfs", "-q", "-f", path)
}

var nvrFile = strings.TrimPrefix(NVRPath, "/")

func exec_() Env { return Env{Run: command.Exec{}} }

func TestParseSuperblock(t *testing.T) {
	ext4 := func(logBS, lo, hi uint32, incompat uint32) []byte {
		h := make([]byte, headerSize)
		binary.LittleEndian.PutUint16(h[ext4MagicAt:], ext4Magic)
		binary.LittleEndian.PutUint32(h[ext4LogBlockSizeAt:], logBS)
		binary.LittleEndian.PutUint32(h[ext4BlocksLoAt:], lo)
		binary.LittleEndian.PutUint32(h[ext4BlocksHiAt:], hi)
		binary.LittleEndian.PutUint32(h[ext4IncompatAt:], incompat)
		return h
	}
	xfs := func(bs uint32, blocks uint64) []byte {
		h := make([]byte, headerSize)
		copy(h, "XFSB")
		binary.BigEndian.PutUint32(h[xfsBlockSizeAt:], bs)
		binary.BigEndian.PutUint64(h[xfsDBlocksAt:], blocks)
		return h
	}
	sq := func(used uint64) []byte {
		h := make([]byte, headerSize)
		copy(h, "hsqs")
		binary.LittleEndian.PutUint64(h[squashBytesUsedAt:], used)
		return h
	}
	for _, c := range []struct {
		name string
		h    []byte
		fs   FSType
		size int64
		err  error
	}{
		{"ext4 4k", ext4(2, 1000, 7, 0), Ext4, 1000 * 4096, nil},
		{"ext4 64bit uses the high word", ext4(2, 1, 1, ext4Incompat64Bit), Ext4, (1<<32 + 1) * 4096, nil},
		{"ext4 1k", ext4(0, 5, 0, 0), Ext4, 5 * 1024, nil},
		{"ext4 absurd block size", ext4(30, 5, 0, 0), "", 0, ErrCorrupt},
		{"ext4 no blocks", ext4(2, 0, 0, 0), "", 0, ErrCorrupt},
		{"xfs", xfs(4096, 76800), XFS, 76800 * 4096, nil},
		{"xfs odd block size", xfs(3000, 10), "", 0, ErrCorrupt},
		{"squashfs", sq(12345), Squashfs, 12345, nil},
		{"squashfs empty", sq(0), "", 0, ErrCorrupt},
		{"zeros", make([]byte, headerSize), "", 0, nil},
		{"short xfs", []byte("XFSB\x00"), "", 0, ErrTruncated},
		{"short", []byte("hi"), "", 0, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			sb, err := parseSuperblock(c.h)
			if !errors.Is(err, c.err) {
				t.Fatalf("error %v, want %v", err, c.err)
			}
			if sb.fs != c.fs || sb.size != c.size {
				t.Fatalf("got %q %d, want %q %d", sb.fs, sb.size, c.fs, c.size)
			}
		})
	}
}

func TestOpenRawExt4(t *testing.T) {
	need(t, "debugfs")
	path := filepath.Join(t.TempDir(), "v2.img")
	mkExt4(t, path, 32<<20, map[string]string{nvrFile: "Base-2-0\n", "etc/hostname": "h\n"})
	// A file longer than its filesystem is fine: the filesystem decides.
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte("trailing"))
	f.Close()
	im, err := Open(context.Background(), path, exec_())
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if im.Format != Raw || im.FSType != Ext4 || im.Size != 32<<20 {
		t.Fatalf("got %s %s %d", im.Format, im.FSType, im.Size)
	}
	nvr, err := im.NVR(context.Background())
	if err != nil || nvr != "Base-2-0" {
		t.Fatalf("NVR = %q, %v", nvr, err)
	}
	if err := im.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := im.ReaderAt().ReadAt(buf, ext4MagicAt); err != nil || binary.LittleEndian.Uint16(buf) != ext4Magic {
		t.Fatalf("ReaderAt does not read the filesystem: %x %v", buf, err)
	}
}

func TestNVRMissing(t *testing.T) {
	need(t, "debugfs")
	path := filepath.Join(t.TempDir(), "plain.img")
	mkExt4(t, path, 8<<20, map[string]string{"etc/hostname": "h\n"})
	im, err := Open(context.Background(), path, exec_())
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if _, err := im.NVR(context.Background()); !errors.Is(err, ErrNoNVR) {
		t.Fatalf("got %v, want ErrNoNVR", err)
	}
}

func TestParseNVR(t *testing.T) {
	for in, want := range map[string]string{
		"Base-2-0\n":                          "Base-2-0",
		"  ovirt-node-ng-4.5.5-0.20240101.0 ": "ovirt-node-ng-4.5.5-0.20240101.0",
		"":                                    "",
		"a b":                                 "",
		"../../x":                             "",
		"two\nlines":                          "",
		strings.Repeat("x", 300):              "",
	} {
		got, err := parseNVR("img", []byte(in))
		if got != want || (want == "") != errors.Is(err, ErrNoNVR) {
			t.Errorf("parseNVR(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestNVRCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "e.img")
	mkExt4(t, path, 8<<20, nil)
	rec := (&commandtest.Recorder{}).On("debugfs", "Base-3-1\n", nil)
	im, err := Open(context.Background(), path, Env{Run: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	nvr, err := im.NVR(context.Background())
	if err != nil || nvr != "Base-3-1" {
		t.Fatalf("NVR = %q, %v", nvr, err)
	}
	want := "debugfs -R 'cat /usr/share/imgbase/build/meta/nvr' " + path
	if got := rec.Lines(); len(got) != 1 || got[0] != want || rec.Mutations() != nil {
		t.Fatalf("commands %q, want [%q] read-only", got, want)
	}
}

func TestOpenTruncated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cut.img")
	mkExt4(t, path, 16<<20, nil)
	if err := os.Truncate(path, 16<<20-4096); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), path, exec_())
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("got %v, want ErrTruncated", err)
	}
}

func TestOpenUnknown(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string][]byte{
		"text":  []byte("not an image at all"),
		"empty": nil,
		"zeros": make([]byte, 1<<20),
	} {
		path := filepath.Join(dir, name)
		os.WriteFile(path, content, 0o644)
		if _, err := Open(context.Background(), path, exec_()); !errors.Is(err, ErrUnknownFormat) {
			t.Errorf("%s: got %v, want ErrUnknownFormat", name, err)
		}
	}
	if _, err := Open(context.Background(), filepath.Join(dir, "missing"), exec_()); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v", err)
	}
}

func TestCheckFindsCorruption(t *testing.T) {
	need(t, "debugfs", "e2fsck")
	path := filepath.Join(t.TempDir(), "bad.img")
	mkExt4(t, path, 16<<20, map[string]string{"etc/a": "a"})
	// Clearing the root directory's inode leaves a filesystem e2fsck
	// must complain about.
	run(t, "debugfs", "-w", "-R", "clri <2>", path)
	im, err := Open(context.Background(), path, exec_())
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if err := im.Check(context.Background()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v, want ErrCorrupt", err)
	}
}

// dirMounter "mounts" by handing out directories prepared by the test,
// so the liveimg logic runs without root or loop devices.
type dirMounter struct {
	dirs      map[string]string // source → directory
	mounted   []string
	unmounted []string
}

func (m *dirMounter) Mount(_ context.Context, source, fstype string) (string, error) {
	m.mounted = append(m.mounted, fstype+" "+source)
	d, ok := m.dirs[source]
	if !ok {
		return "", errors.New("mount failed")
	}
	return d, nil
}

func (m *dirMounter) Unmount(_ context.Context, dir string) error {
	m.unmounted = append(m.unmounted, dir)
	return nil
}

func mkSquash(t *testing.T, dir, out string) {
	t.Helper()
	need(t, "mksquashfs")
	run(t, "mksquashfs", dir, out, "-noappend", "-quiet", "-no-progress")
}

func TestOpenLiveImgFake(t *testing.T) {
	need(t, "debugfs")
	content := t.TempDir()
	os.Mkdir(filepath.Join(content, "LiveOS"), 0o755)
	inner := filepath.Join(content, RootfsPath)
	mkExt4(t, inner, 24<<20, map[string]string{nvrFile: "ovirt-node-ng-4.5.5-0.1.el9\n"})
	sq := filepath.Join(t.TempDir(), "node.squashfs.img")
	mkSquash(t, content, sq)

	m := &dirMounter{dirs: map[string]string{sq: content}}
	im, err := Open(context.Background(), sq, Env{Run: command.Exec{}, Mount: m})
	if err != nil {
		t.Fatal(err)
	}
	if im.Format != LiveImg || im.FSType != Ext4 || im.Size != 24<<20 || im.FSPath() != inner {
		t.Fatalf("got %s %s %d %s", im.Format, im.FSType, im.Size, im.FSPath())
	}
	nvr, err := im.NVR(context.Background())
	if err != nil || nvr != "ovirt-node-ng-4.5.5-0.1.el9" {
		t.Fatalf("NVR = %q, %v", nvr, err)
	}
	if err := im.Close(); err != nil {
		t.Fatal(err)
	}
	if len(m.mounted) != 1 || m.mounted[0] != "squashfs "+sq || len(m.unmounted) != 1 || m.unmounted[0] != content {
		t.Fatalf("mounted %q, unmounted %q", m.mounted, m.unmounted)
	}
}

func TestOpenLiveImgRefusals(t *testing.T) {
	sqDir := t.TempDir()
	sq := filepath.Join(sqDir, "x.squashfs")
	mkSquash(t, tree(t, map[string]string{"hello": "x"}), sq)

	secret := filepath.Join(t.TempDir(), "secret.img")
	mkExt4(t, secret, 8<<20, nil)
	escape := t.TempDir()
	os.Mkdir(filepath.Join(escape, "LiveOS"), 0o755)
	os.Symlink(secret, filepath.Join(escape, RootfsPath))

	notFS := tree(t, map[string]string{RootfsPath: strings.Repeat("junk", 2000)})

	cutDir := t.TempDir()
	os.Mkdir(filepath.Join(cutDir, "LiveOS"), 0o755)
	mkExt4(t, filepath.Join(cutDir, RootfsPath), 8<<20, nil)
	os.Truncate(filepath.Join(cutDir, RootfsPath), 4<<20)

	for name, c := range map[string]struct {
		dir  string
		want error
	}{
		"no rootfs.img":        {t.TempDir(), ErrUnknownFormat},
		"rootfs.img a symlink": {escape, ErrUnknownFormat},
		"rootfs.img not a fs":  {notFS, ErrUnknownFormat},
		"rootfs.img cut short": {cutDir, ErrTruncated},
	} {
		m := &dirMounter{dirs: map[string]string{sq: c.dir}}
		_, err := Open(context.Background(), sq, Env{Run: command.Exec{}, Mount: m})
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", name, err, c.want)
		}
		if len(m.unmounted) != 1 {
			t.Errorf("%s: a failed Open must unmount; unmounted %q", name, m.unmounted)
		}
	}

	// A squashfs cut short is refused before anything is mounted.
	// (mksquashfs pads the file to 4 KiB: cut below bytes_used.)
	h := make([]byte, 64)
	f, _ := os.Open(sq)
	f.ReadAt(h, 0)
	f.Close()
	os.Truncate(sq, int64(binary.LittleEndian.Uint64(h[squashBytesUsedAt:]))-1)
	m := &dirMounter{}
	if _, err := Open(context.Background(), sq, Env{Run: command.Exec{}, Mount: m}); !errors.Is(err, ErrTruncated) || len(m.mounted) != 0 {
		t.Errorf("truncated squashfs: got %v, mounted %q", err, m.mounted)
	}
}

// canLoopMount reports whether this test may use real loop mounts.
func canLoopMount(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loop mounts need root")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skip("no loop devices")
	}
}

func TestLiveImgLoopMounted(t *testing.T) {
	canLoopMount(t)
	need(t, "debugfs", "mount", "umount")
	content := t.TempDir()
	os.Mkdir(filepath.Join(content, "LiveOS"), 0o755)
	mkExt4(t, filepath.Join(content, RootfsPath), 16<<20, map[string]string{nvrFile: "Base-5-0"})
	sq := filepath.Join(t.TempDir(), "node.squashfs.img")
	mkSquash(t, content, sq)

	mnt := LoopMounter{Run: command.Exec{}, TempDir: t.TempDir()}
	im, err := Open(context.Background(), sq, Env{Run: command.Exec{}, Mount: mnt})
	if err != nil {
		t.Fatal(err)
	}
	if im.FSType != Ext4 || im.Size != 16<<20 {
		t.Fatalf("got %s %d", im.FSType, im.Size)
	}
	nvr, err := im.NVR(context.Background())
	if err != nil || nvr != "Base-5-0" {
		t.Fatalf("NVR = %q, %v", nvr, err)
	}
	if err := im.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := im.Close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(mnt.TempDir); len(left) != 0 {
		t.Fatalf("mount points left behind: %v", left)
	}
}

func TestXFSLoopMounted(t *testing.T) {
	canLoopMount(t)
	need(t, "mount", "umount", "xfs_repair")
	path := filepath.Join(t.TempDir(), "x.img")
	mkXFS(t, path, 320<<20)
	mnt := t.TempDir()
	run(t, "mount", "-o", "loop", path, mnt)
	os.MkdirAll(filepath.Join(mnt, filepath.Dir(nvrFile)), 0o755)
	os.WriteFile(filepath.Join(mnt, nvrFile), []byte("Base-9-1\n"), 0o644)
	// A symlink out of the image must not be followed on the host.
	os.Symlink("/etc/hostname", filepath.Join(mnt, "usr/share/imgbase/build/meta/escape"))
	run(t, "umount", mnt)

	env := Env{Run: command.Exec{}, Mount: LoopMounter{Run: command.Exec{}, TempDir: t.TempDir()}}
	im, err := Open(context.Background(), path, env)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if im.Format != Raw || im.FSType != XFS || im.Size != 320<<20 {
		t.Fatalf("got %s %s %d", im.Format, im.FSType, im.Size)
	}
	nvr, err := im.NVR(context.Background())
	if err != nil || nvr != "Base-9-1" {
		t.Fatalf("NVR = %q, %v", nvr, err)
	}
	if _, err := im.readMounted(context.Background(), "/usr/share/imgbase/build/meta/escape"); err == nil {
		t.Fatal("a symlink pointing out of the image was followed")
	}
	if err := im.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestXFSSizeFromSuperblock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.img")
	mkXFS(t, path, 320<<20)
	// The file is larger than the filesystem; Size must be the latter.
	os.Truncate(path, 400<<20)
	im, err := Open(context.Background(), path, exec_())
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if im.FSType != XFS || im.Size != 320<<20 {
		t.Fatalf("got %s %d", im.FSType, im.Size)
	}
	os.Truncate(path, 300<<20)
	if _, err := Open(context.Background(), path, exec_()); !errors.Is(err, ErrTruncated) {
		t.Fatalf("got %v, want ErrTruncated", err)
	}
}

// FuzzParseSuperblock feeds arbitrary headers: detection must never
// panic, and whatever it recognises must have a positive, bounded size.
func FuzzParseSuperblock(f *testing.F) {
	h := make([]byte, headerSize)
	binary.LittleEndian.PutUint16(h[ext4MagicAt:], ext4Magic)
	binary.LittleEndian.PutUint32(h[ext4BlocksLoAt:], 100)
	f.Add(h)
	f.Add([]byte("XFSB\x00\x00\x10\x00\x00\x00\x00\x00\x00\x00\x01\x00"))
	f.Add([]byte("hsqs"))
	f.Fuzz(func(t *testing.T, h []byte) {
		sb, err := parseSuperblock(h)
		if err != nil && sb.fs != "" {
			t.Fatalf("error %v with fs %q", err, sb.fs)
		}
		if sb.fs != "" && (sb.size <= 0 || sb.size > 1<<50) {
			t.Fatalf("fs %q with size %d", sb.fs, sb.size)
		}
	})
}

// TestLiveImgHoldingXFS: the inner image may be XFS; its NVR is read by
// mounting the inner file, never the squashfs path itself.
func TestLiveImgHoldingXFS(t *testing.T) {
	content := t.TempDir()
	os.Mkdir(filepath.Join(content, "LiveOS"), 0o755)
	inner := filepath.Join(content, RootfsPath)
	mkXFS(t, inner, 300<<20)
	sq := filepath.Join(t.TempDir(), "node.squashfs.img")
	mkSquash(t, content, sq)
	innerTree := tree(t, map[string]string{nvrFile: "Base-7-0\n"})

	m := &dirMounter{dirs: map[string]string{sq: content, inner: innerTree}}
	im, err := Open(context.Background(), sq, Env{Run: command.Exec{}, Mount: m})
	if err != nil {
		t.Fatal(err)
	}
	if im.Format != LiveImg || im.FSType != XFS || im.Size != 300<<20 {
		t.Fatalf("got %s %s %d", im.Format, im.FSType, im.Size)
	}
	nvr, err := im.NVR(context.Background())
	if err != nil || nvr != "Base-7-0" {
		t.Fatalf("NVR = %q, %v", nvr, err)
	}
	im.Close()
	want := []string{"squashfs " + sq, "xfs " + inner}
	if strings.Join(m.mounted, "|") != strings.Join(want, "|") || len(m.unmounted) != 2 {
		t.Fatalf("mounted %q (want %q), unmounted %q", m.mounted, want, m.unmounted)
	}
}
