package filesystem

import (
	"context"
	"strings"
	"testing"

	"github.com/imgbase/imgbase/internal/command"
	"github.com/imgbase/imgbase/internal/command/commandtest"
)

func TestSetRoot(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"# static\n/dev/mapper/HostVG-root /               ext4    errors=remount-ro 0       1\nUUID=1 /boot ext4 defaults 0 2\n",
			"# static\n/dev/HostVG/L / ext4 errors=remount-ro,discard 0 1\nUUID=1 /boot ext4 defaults 0 2\n"},
		{"/dev/a /\n", "/dev/HostVG/L / ext4 defaults,discard 0 1\n"},
		{"", "/dev/HostVG/L / ext4 defaults,discard 0 1\n"},
		{"UUID=1 /boot ext4 defaults 0 2", "UUID=1 /boot ext4 defaults 0 2\n/dev/HostVG/L / ext4 defaults,discard 0 1\n"},
		{"/dev/a / ext4 defaults 0 1\n/dev/b / ext4 defaults 0 1\n", "/dev/HostVG/L / ext4 defaults,discard 0 1\n# /dev/b / ext4 defaults 0 1\n"},
		{"#/dev/old / ext4 defaults 0 1\n", "#/dev/old / ext4 defaults 0 1\n/dev/HostVG/L / ext4 defaults,discard 0 1\n"},
	} {
		got := string(SetRoot([]byte(tc.in), "/dev/HostVG/L", "ext4"))
		if got != tc.want {
			t.Errorf("SetRoot(%q) =\n%q\nwant\n%q", tc.in, got, tc.want)
		}
		if Root([]byte(got)) != "/dev/HostVG/L" {
			t.Errorf("Root of %q", got)
		}
	}
}

// An fstab written for another filesystem than the layer's gets the
// layer's type, and loses the old type's options.
func TestSetRootOtherType(t *testing.T) {
	for _, tc := range []struct{ in, fstype, want string }{
		{"UUID=1 / ext4 errors=remount-ro 0 1\n", "xfs", "/dev/HostVG/L / xfs defaults,discard 0 0\n"},
		{"/dev/x / xfs defaults,noatime 0 0\n", "ext4", "/dev/HostVG/L / ext4 defaults,discard 0 1\n"},
		{"/dev/x / xfs noatime 0 0\n", "xfs", "/dev/HostVG/L / xfs noatime,discard 0 0\n"},
	} {
		if got := string(SetRoot([]byte(tc.in), "/dev/HostVG/L", tc.fstype)); got != tc.want {
			t.Errorf("SetRoot(%q, %s) = %q, want %q", tc.in, tc.fstype, got, tc.want)
		}
	}
}

func TestNewUUIDCommands(t *testing.T) {
	rec := &commandtest.Recorder{}
	tools := Tools{Run: rec}
	ctx := context.Background()
	if err := tools.NewUUID(ctx, "/dev/v/l", "ext4", "/mnt/x", false); err != nil {
		t.Fatal(err)
	}
	if err := tools.NewUUID(ctx, "/dev/v/x", "xfs", "/mnt/x", false); err != nil {
		t.Fatal(err)
	}
	want := "e2fsck -fy /dev/v/l\ntune2fs -U random /dev/v/l\nmount -t xfs -o nouuid /dev/v/x /mnt/x\numount /mnt/x\nxfs_admin -U generate /dev/v/x"
	if got := strings.Join(rec.Lines(), "\n"); got != want {
		t.Errorf("commands:\n%s\nwant:\n%s", got, want)
	}
	if rec.Calls[0].OKCodes[0] != 1 {
		t.Error("e2fsck's exit 1 (errors fixed) must count as success")
	}
	if err := tools.NewUUID(ctx, "/dev/v/b", "btrfs", "/mnt", false); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("btrfs: %v", err)
	}
}

// A clean filesystem (a copy of a checked image) skips the check or the
// log replay; when the tool refuses all the same, the full way follows.
func TestNewUUIDClean(t *testing.T) {
	ctx := context.Background()
	rec := &commandtest.Recorder{}
	tools := Tools{Run: rec}
	if err := tools.NewUUID(ctx, "/dev/v/l", "ext4", "/mnt/x", true); err != nil {
		t.Fatal(err)
	}
	if err := tools.NewUUID(ctx, "/dev/v/x", "xfs", "/mnt/x", true); err != nil {
		t.Fatal(err)
	}
	want := "tune2fs -T now -U random /dev/v/l\nxfs_admin -U generate /dev/v/x"
	if got := strings.Join(rec.Lines(), "\n"); got != want {
		t.Errorf("commands:\n%s\nwant:\n%s", got, want)
	}

	refused := &command.Error{ExitCode: 1, Stderr: "Please run e2fsck -f on the filesystem."}
	rec = (&commandtest.Recorder{}).
		On("tune2fs -T now -U random /dev/v/l", "", refused).
		Once("xfs_admin -U generate /dev/v/x", "", &command.Error{ExitCode: 1, Stderr: "dirty log"})
	tools = Tools{Run: rec}
	if err := tools.NewUUID(ctx, "/dev/v/l", "ext4", "/mnt/x", true); err != nil {
		t.Fatal(err)
	}
	if err := tools.NewUUID(ctx, "/dev/v/x", "xfs", "/mnt/x", true); err != nil {
		t.Fatal(err)
	}
	want = "tune2fs -T now -U random /dev/v/l\ne2fsck -fy /dev/v/l\ntune2fs -U random /dev/v/l\n" +
		"xfs_admin -U generate /dev/v/x\nmount -t xfs -o nouuid /dev/v/x /mnt/x\numount /mnt/x\nxfs_admin -U generate /dev/v/x"
	if got := strings.Join(rec.Lines(), "\n"); got != want {
		t.Errorf("commands after refusals:\n%s\nwant:\n%s", got, want)
	}
}

func TestType(t *testing.T) {
	rec := (&commandtest.Recorder{}).
		On("blkid -p -o value -s TYPE /dev/empty", "", &command.Error{ExitCode: 2}).
		On("blkid -p -o value -s TYPE /dev/broken", "", &command.Error{ExitCode: 4, Stderr: "io error"}).
		On("blkid", "ext4\n", nil)
	tools := Tools{Run: rec}
	if fs, err := tools.Type(context.Background(), "/dev/a"); fs != "ext4" || err != nil {
		t.Errorf("%q %v", fs, err)
	}
	if fs, err := tools.Type(context.Background(), "/dev/empty"); fs != "" || err != nil {
		t.Errorf("empty: %q %v", fs, err)
	}
	if _, err := tools.Type(context.Background(), "/dev/broken"); err == nil {
		t.Error("a failing blkid was taken for no filesystem")
	}
}

// A layer made from an image's base gets the host's /boot, ESP and swap,
// replacing the image's own lines for them; everything else is the
// layer's, and a second pass changes nothing.
func TestHostWide(t *testing.T) {
	running := "/dev/HostVG/Base-1-0+1 / ext4 defaults,discard 0 1\n" +
		"UUID=b00t /boot ext4 defaults 0 2\n" +
		"UUID=E5P /boot/efi vfat umask=0077 0 1\n" +
		"/dev/HostVG/swap none swap sw 0 0\n" +
		"/dev/HostVG/var /var ext4 defaults,discard 0 2\n" +
		"# UUID=old /efi vfat defaults 0 1\n"
	image := "# image\nUUID=img / ext4 errors=remount-ro 0 1\nUUID=buildboot /boot ext4 defaults 0 2\n/dev/sdb1 none swap sw 0 0\ntmpfs /tmp tmpfs defaults 0 0\n"
	want := "# image\nUUID=img / ext4 errors=remount-ro 0 1\ntmpfs /tmp tmpfs defaults 0 0\n" +
		"UUID=b00t /boot ext4 defaults 0 2\nUUID=E5P /boot/efi vfat umask=0077 0 1\n/dev/HostVG/swap none swap sw 0 0\n"
	got := string(HostWide([]byte(image), []byte(running)))
	if got != want {
		t.Fatalf("HostWide =\n%s\nwant\n%s", got, want)
	}
	if again := string(HostWide([]byte(got), []byte(running))); again != got {
		t.Fatalf("second pass changed it:\n%s", again)
	}
	// A host without a separate /boot leaves the layer's lines alone.
	if got := string(HostWide([]byte(image), []byte("/dev/HostVG/L / ext4 defaults 0 1\n"))); got != image {
		t.Fatalf("without host-wide lines:\n%s", got)
	}
	// An image fstab without a trailing newline.
	if got := string(HostWide([]byte("UUID=img / ext4 defaults 0 1"), []byte("UUID=b00t /boot ext4 defaults 0 2\n"))); got != "UUID=img / ext4 defaults 0 1\nUUID=b00t /boot ext4 defaults 0 2\n" {
		t.Fatalf("no trailing newline:\n%q", got)
	}
}
