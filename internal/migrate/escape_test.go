package migrate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// watchOutside sets inotify watches on a directory outside all roots, its
// subdirectory and files, for every event including open and access; it
// returns a function listing the events seen since.
func watchOutside(t *testing.T, paths ...string) func() []string {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	names := map[int]string{}
	for _, p := range paths {
		wd, err := unix.InotifyAddWatch(fd, p, unix.IN_ALL_EVENTS)
		if err != nil {
			t.Fatal(err)
		}
		names[wd] = p
	}
	return func() []string {
		var events []string
		buf := make([]byte, 64*1024)
		for {
			n, err := unix.Read(fd, buf)
			if err == unix.EAGAIN || n <= 0 {
				return events
			}
			if err != nil {
				t.Fatal(err)
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				ev := (*unix.InotifyEvent)(unsafePointer(&buf[off]))
				name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)]), "\x00")
				events = append(events, names[int(ev.Wd)]+"/"+name+" mask "+maskString(ev.Mask))
				off += unix.SizeofInotifyEvent + int(ev.Len)
			}
		}
	}
}

func maskString(m uint32) string {
	var s []string
	for bit, name := range map[uint32]string{unix.IN_ACCESS: "access", unix.IN_OPEN: "open", unix.IN_MODIFY: "modify",
		unix.IN_ATTRIB: "attrib", unix.IN_CREATE: "create", unix.IN_DELETE: "delete", unix.IN_MOVED_FROM: "moved_from",
		unix.IN_MOVED_TO: "moved_to", unix.IN_CLOSE_NOWRITE: "close_nowrite", unix.IN_CLOSE_WRITE: "close_write",
		unix.IN_DELETE_SELF: "delete_self", unix.IN_MOVE_SELF: "move_self"} {
		if m&bit != 0 {
			s = append(s, name)
		}
	}
	return strings.Join(s, "|")
}

func TestSymlinksPointingOutsideAreNeverFollowed(t *testing.T) {
	needXattrs(t)
	f := newFixture(t)
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	writeFile(t, secret, "do not read\n", 0o644)
	inner := filepath.Join(outside, "inner")
	writeFile(t, filepath.Join(inner, "file"), "inner\n", 0o644)
	setX(t, secret, "user.outside", "1")
	up := strings.Repeat("../", 12)

	// Admin added symlinks to the outside directory and file.
	mustSymlink(t, outside, filepath.Join(f.running, "etc/evil-abs"))
	mustSymlink(t, up+strings.TrimPrefix(outside, "/"), filepath.Join(f.running, "etc/evil-rel"))
	// Old base and new image ship a symlink to the outside directory; the
	// admin made it a directory: the merge must write a real directory.
	for _, root := range []string{f.old, f.newL} {
		mustSymlink(t, outside, filepath.Join(root, "etc/sub"))
	}
	writeFile(t, filepath.Join(f.running, "etc/sub/file"), "admin\n", 0o644)
	writeFile(t, filepath.Join(f.running, "etc/sub/secret"), "admin secret\n", 0o644)
	// The image replaced a directory the admin changed by a symlink out.
	writeFile(t, filepath.Join(f.running, "etc/deep/x/y/z.conf"), "admin z\n", 0o644)
	mustRemove(t, filepath.Join(f.newL, "etc/deep/x"))
	mustSymlink(t, inner, filepath.Join(f.newL, "etc/deep/x"))
	// The admin made a directory a symlink out; the image left it alone:
	// removing the image's directory must not reach through the link.
	mustRemove(t, filepath.Join(f.running, "etc/ssh"))
	mustSymlink(t, inner, filepath.Join(f.running, "etc/ssh"))
	// The admin made a file a symlink to the outside file; the image
	// changed the file: a conflict, the link copied as a link.
	mustRemove(t, filepath.Join(f.running, "etc/conf.d/a"))
	mustSymlink(t, secret, filepath.Join(f.running, "etc/conf.d/a"))
	writeFile(t, filepath.Join(f.newL, "etc/conf.d/a"), "a=2\n", 0o644)
	// A link out in all three, changed by the admin and by the image.
	mustSymlink(t, secret, filepath.Join(f.old, "etc/link"))
	mustSymlink(t, inner, filepath.Join(f.running, "etc/link"))
	mustSymlink(t, outside, filepath.Join(f.newL, "etc/link"))
	// A link out the admin deleted.
	mustSymlink(t, inner, filepath.Join(f.old, "etc/gone"))
	mustSymlink(t, inner, filepath.Join(f.newL, "etc/gone"))

	events := watchOutside(t, outside, inner, secret, filepath.Join(inner, "file"))
	rep := f.run()
	if ev := events(); len(ev) > 0 {
		t.Fatalf("the merge touched files outside the roots:\n%s", strings.Join(ev, "\n"))
	}
	assertContent(t, secret, "do not read\n")
	assertContent(t, filepath.Join(inner, "file"), "inner\n")
	if entries, _ := os.ReadDir(outside); len(entries) != 2 {
		t.Errorf("outside directory now has %d entries", len(entries))
	}

	assertLink(t, filepath.Join(f.newL, "etc/evil-abs"), outside)
	assertLink(t, filepath.Join(f.newL, "etc/evil-rel"), up+strings.TrimPrefix(outside, "/"))
	if st := lstat(t, filepath.Join(f.newL, "etc/sub")); st.Mode&unix.S_IFMT != unix.S_IFDIR {
		t.Errorf("etc/sub is not a directory in the new layer")
	}
	assertContent(t, filepath.Join(f.newL, "etc/sub/secret"), "admin secret\n")
	assertContent(t, filepath.Join(f.newL, "etc/deep/x/y/z.conf"), "admin z\n")
	assertLink(t, filepath.Join(f.newL, "etc/deep/x.imgnew"), inner)
	assertLink(t, filepath.Join(f.newL, "etc/ssh"), inner)
	assertLink(t, filepath.Join(f.newL, "etc/conf.d/a"), secret)
	assertContent(t, filepath.Join(f.newL, "etc/conf.d/a.imgnew"), "a=2\n")
	assertLink(t, filepath.Join(f.newL, "etc/link"), inner)
	assertLink(t, filepath.Join(f.newL, "etc/link.imgnew"), outside)
	assertMissing(t, filepath.Join(f.newL, "etc/gone"))
	for _, p := range []string{"/etc/deep/x", "/etc/conf.d/a", "/etc/link"} {
		if conflictAt(rep, p) == nil {
			t.Errorf("no conflict for %s: %+v", p, rep.Conflicts)
		}
	}
}

func unsafePointer(b *byte) unsafe.Pointer { return unsafe.Pointer(b) }
