package migrate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestUntouchedTreesChangeNothing(t *testing.T) {
	f := newFixture(t)
	rep := f.run()
	if len(rep.Taken)+len(rep.Kept)+len(rep.Added)+len(rep.Deleted)+len(rep.Conflicts)+len(rep.Accounts) != 0 {
		t.Errorf("identical trees gave a non-empty report: %+v", rep)
	}
}

func TestUnchangedByAdminTakesImage(t *testing.T) {
	f := newFixture(t)
	writeFile(t, filepath.Join(f.newL, "etc/motd"), "welcome to v2\n", 0o644)
	writeFile(t, filepath.Join(f.newL, "etc/new-in-v2.conf"), "v2\n", 0o644)
	rep := f.run()
	assertContent(t, filepath.Join(f.newL, "etc/motd"), "welcome to v2\n")
	assertContent(t, filepath.Join(f.newL, "etc/new-in-v2.conf"), "v2\n")
	if !has(rep.Taken, "/etc/motd") || !has(rep.Taken, "/etc/new-in-v2.conf") {
		t.Errorf("taken = %v, want /etc/motd and /etc/new-in-v2.conf", rep.Taken)
	}
	if len(rep.Kept)+len(rep.Conflicts) != 0 {
		t.Errorf("unexpected kept/conflicts: %+v", rep)
	}
}

func TestAdminChangeKept(t *testing.T) {
	f := newFixture(t)
	writeFile(t, filepath.Join(f.running, "etc/hostname"), "myhost\n", 0o644)
	rep := f.run()
	assertContent(t, filepath.Join(f.newL, "etc/hostname"), "myhost\n")
	if !has(rep.Kept, "/etc/hostname") {
		t.Errorf("kept = %v, want /etc/hostname", rep.Kept)
	}
}

func TestChangedByBothIsConflictWithImgnew(t *testing.T) {
	f := newFixture(t)
	writeFile(t, filepath.Join(f.running, "etc/ssh/sshd_config"), "PermitRootLogin yes\n", 0o644)
	writeFile(t, filepath.Join(f.newL, "etc/ssh/sshd_config"), "PermitRootLogin no\nUsePAM yes\n", 0o644)
	rep := f.run()
	assertContent(t, filepath.Join(f.newL, "etc/ssh/sshd_config"), "PermitRootLogin yes\n")
	assertContent(t, filepath.Join(f.newL, "etc/ssh/sshd_config.imgnew"), "PermitRootLogin no\nUsePAM yes\n")
	c := conflictAt(rep, "/etc/ssh/sshd_config")
	if c == nil || c.ImageCopy != "/etc/ssh/sshd_config.imgnew" {
		t.Fatalf("conflict = %+v, want one with image copy /etc/ssh/sshd_config.imgnew", c)
	}
	if !rep.Conflicted() {
		t.Error("Conflicted() = false")
	}
}

func TestSameChangeOnBothSidesIsNoConflict(t *testing.T) {
	f := newFixture(t)
	writeFile(t, filepath.Join(f.running, "etc/conf.d/a"), "a=2\n", 0o644)
	writeFile(t, filepath.Join(f.newL, "etc/conf.d/a"), "a=2\n", 0o644)
	rep := f.run()
	if rep.Conflicted() {
		t.Errorf("conflicts %+v for an identical change", rep.Conflicts)
	}
	assertMissing(t, filepath.Join(f.newL, "etc/conf.d/a.imgnew"))
}

func TestAddedByAdminKept(t *testing.T) {
	f := newFixture(t)
	writeFile(t, filepath.Join(f.running, "etc/myapp/app.conf"), "x=1\n", 0o600)
	writeFile(t, filepath.Join(f.running, "etc/myapp/sub/more.conf"), "y\n", 0o644)
	mustSymlink(t, "app.conf", filepath.Join(f.running, "etc/myapp/current"))
	writeFile(t, filepath.Join(f.running, "etc/extra.conf"), "e\n", 0o644)
	rep := f.run()
	assertContent(t, filepath.Join(f.newL, "etc/myapp/app.conf"), "x=1\n")
	assertContent(t, filepath.Join(f.newL, "etc/myapp/sub/more.conf"), "y\n")
	assertLink(t, filepath.Join(f.newL, "etc/myapp/current"), "app.conf")
	if st := lstat(t, filepath.Join(f.newL, "etc/myapp/app.conf")); st.Mode&0o7777 != 0o600 {
		t.Errorf("mode %o, want 600", st.Mode&0o7777)
	}
	if !has(rep.Added, "/etc/myapp") || !has(rep.Added, "/etc/extra.conf") {
		t.Errorf("added = %v", rep.Added)
	}
}

func TestDeletedByAdminStaysDeleted(t *testing.T) {
	f := newFixture(t)
	mustRemove(t, filepath.Join(f.running, "etc/motd"))
	mustRemove(t, filepath.Join(f.running, "etc/deep"))
	rep := f.run()
	assertMissing(t, filepath.Join(f.newL, "etc/motd"))
	assertMissing(t, filepath.Join(f.newL, "etc/deep"))
	if !has(rep.Deleted, "/etc/motd") || !has(rep.Deleted, "/etc/deep") {
		t.Errorf("deleted = %v", rep.Deleted)
	}
}

func TestDeletedByAdminChangedByImage(t *testing.T) {
	f := newFixture(t)
	mustRemove(t, filepath.Join(f.running, "etc/motd"))
	writeFile(t, filepath.Join(f.newL, "etc/motd"), "v2 motd\n", 0o644)
	mustRemove(t, filepath.Join(f.running, "etc/deep"))
	writeFile(t, filepath.Join(f.newL, "etc/deep/x/new.conf"), "n\n", 0o644)
	rep := f.run()
	assertMissing(t, filepath.Join(f.newL, "etc/motd"))
	assertContent(t, filepath.Join(f.newL, "etc/motd.imgnew"), "v2 motd\n")
	assertMissing(t, filepath.Join(f.newL, "etc/deep"))
	assertContent(t, filepath.Join(f.newL, "etc/deep.imgnew/x/new.conf"), "n\n")
	for _, p := range []string{"/etc/motd", "/etc/deep"} {
		if c := conflictAt(rep, p); c == nil || c.ImageCopy != p+".imgnew" {
			t.Errorf("conflict for %s = %+v", p, c)
		}
	}
}

func TestChangedByAdminRemovedByImage(t *testing.T) {
	f := newFixture(t)
	writeFile(t, filepath.Join(f.running, "etc/conf.d/b"), "b=admin\n", 0o644)
	mustRemove(t, filepath.Join(f.newL, "etc/conf.d/b"))
	mustRemove(t, filepath.Join(f.newL, "etc/conf.d/a")) // untouched by the admin: goes
	rep := f.run()
	assertContent(t, filepath.Join(f.newL, "etc/conf.d/b"), "b=admin\n")
	assertMissing(t, filepath.Join(f.newL, "etc/conf.d/a"))
	if c := conflictAt(rep, "/etc/conf.d/b"); c == nil || c.ImageCopy != "" {
		t.Errorf("conflict = %+v, want one without image copy", c)
	}
	if !has(rep.Taken, "/etc/conf.d/a") {
		t.Errorf("taken = %v, want the image's removal of /etc/conf.d/a", rep.Taken)
	}
}

func TestModeOwnerXattrAreChanges(t *testing.T) {
	needRoot(t)
	needXattrs(t)
	f := newFixture(t)
	if err := os.Chmod(filepath.Join(f.running, "etc/conf.d/a"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(filepath.Join(f.running, "etc/conf.d/b"), 1234, 4321); err != nil {
		t.Fatal(err)
	}
	setX(t, filepath.Join(f.running, "etc/hostname"), "user.label", "admin")
	if err := os.Chmod(filepath.Join(f.running, "etc/deep/x"), 0o750); err != nil {
		t.Fatal(err)
	}
	setX(t, filepath.Join(f.running, "etc/deep/x"), "user.dir", "d")
	rep := f.run()
	if got := getX(t, filepath.Join(f.newL, "etc/deep/x"), "user.dir"); got != "d" {
		t.Errorf("directory xattr user.dir = %q", got)
	}
	if st := lstat(t, filepath.Join(f.newL, "etc/conf.d/a")); st.Mode&0o7777 != 0o600 {
		t.Errorf("mode %o, want 600", st.Mode&0o7777)
	}
	if st := lstat(t, filepath.Join(f.newL, "etc/conf.d/b")); st.Uid != 1234 || st.Gid != 4321 {
		t.Errorf("owner %d:%d, want 1234:4321", st.Uid, st.Gid)
	}
	if got := getX(t, filepath.Join(f.newL, "etc/hostname"), "user.label"); got != "admin" {
		t.Errorf("user.label = %q", got)
	}
	if st := lstat(t, filepath.Join(f.newL, "etc/deep/x")); st.Mode&0o7777 != 0o750 {
		t.Errorf("dir mode %o, want 750", st.Mode&0o7777)
	}
	for _, p := range []string{"/etc/conf.d/a", "/etc/conf.d/b", "/etc/hostname", "/etc/deep/x/"} {
		if !has(rep.Kept, p) {
			t.Errorf("kept = %v, want %s", rep.Kept, p)
		}
	}
}

func TestXattrConflictAndImageLabelKept(t *testing.T) {
	needXattrs(t)
	f := newFixture(t)
	// The image relabels a file the admin did not touch: the image's label.
	setX(t, filepath.Join(f.newL, "etc/motd"), "user.selinux", "etc_t:v2")
	// Both relabel one file differently: the admin's wins, the image's aside.
	setX(t, filepath.Join(f.running, "etc/hostname"), "user.selinux", "admin_t")
	setX(t, filepath.Join(f.newL, "etc/hostname"), "user.selinux", "image_t")
	rep := f.run()
	if got := getX(t, filepath.Join(f.newL, "etc/motd"), "user.selinux"); got != "etc_t:v2" {
		t.Errorf("motd label %q", got)
	}
	if got := getX(t, filepath.Join(f.newL, "etc/hostname"), "user.selinux"); got != "admin_t" {
		t.Errorf("hostname label %q", got)
	}
	if got := getX(t, filepath.Join(f.newL, "etc/hostname.imgnew"), "user.selinux"); got != "image_t" {
		t.Errorf("hostname.imgnew label %q", got)
	}
	if conflictAt(rep, "/etc/hostname") == nil {
		t.Errorf("no conflict for /etc/hostname: %+v", rep.Conflicts)
	}
}

// posixACL encodes a POSIX ACL the way the kernel stores it in
// system.posix_acl_*: version 2, then (tag, perm, id) entries.
func posixACL(entries ...[3]uint32) []byte {
	b := []byte{2, 0, 0, 0}
	for _, e := range entries {
		b = append(b, byte(e[0]), byte(e[0]>>8), byte(e[1]), byte(e[1]>>8),
			byte(e[2]), byte(e[2]>>8), byte(e[2]>>16), byte(e[2]>>24))
	}
	return b
}

const (
	aclUserObj, aclUser, aclGroupObj, aclGroup, aclMask, aclOther = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
	aclUndefinedID                                                = 0xffffffff
)

func TestACLsCopiedAndInheritedOnesDropped(t *testing.T) {
	needXattrs(t)
	f := newFixture(t)
	acl := posixACL([3]uint32{aclUserObj, 6, aclUndefinedID}, [3]uint32{aclUser, 4, 1234},
		[3]uint32{aclGroupObj, 4, aclUndefinedID}, [3]uint32{aclMask, 4, aclUndefinedID},
		[3]uint32{aclOther, 0, aclUndefinedID})
	// The new layer's directory has a default ACL, which a file created in
	// it inherits; the admin's file had an access ACL of its own, and the
	// admin's other file had none.
	if err := unix.Setxattr(filepath.Join(f.newL, "etc/conf.d"), "system.posix_acl_default", acl, 0); err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			t.Skip("no ACL support on the temporary filesystem")
		}
		t.Fatal(err)
	}
	withACL := filepath.Join(f.running, "etc/conf.d/acl")
	writeFile(t, withACL, "acl\n", 0o640)
	if err := unix.Setxattr(withACL, "system.posix_acl_access", acl, 0); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(f.running, "etc/conf.d/plain"), "plain\n", 0o644)
	setX(t, filepath.Join(f.running, "etc/conf.d/plain"), "user.one", "1")
	f.run()

	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(filepath.Join(f.newL, "etc/conf.d/acl"), "system.posix_acl_access", buf)
	if err != nil {
		t.Fatalf("copied ACL: %v", err)
	}
	if string(buf[:n]) != string(acl) {
		t.Errorf("copied ACL %x, want %x", buf[:n], acl)
	}
	plain := filepath.Join(f.newL, "etc/conf.d/plain")
	if _, err := unix.Lgetxattr(plain, "system.posix_acl_access", buf); !errors.Is(err, unix.ENODATA) {
		t.Errorf("inherited ACL not dropped from the copy: err %v", err)
	}
	if got := getX(t, plain, "user.one"); got != "1" {
		t.Errorf("user.one = %q", got)
	}
	if st := lstat(t, plain); st.Mode&0o7777 != 0o644 {
		t.Errorf("mode %o, want 644", st.Mode&0o7777)
	}
}

func TestSymlinkTargetChangeKeptAsSymlink(t *testing.T) {
	f := newFixture(t)
	mustRemove(t, filepath.Join(f.running, "etc/localtime"))
	mustSymlink(t, "../usr/share/zoneinfo/Europe/Paris", filepath.Join(f.running, "etc/localtime"))
	rep := f.run()
	assertLink(t, filepath.Join(f.newL, "etc/localtime"), "../usr/share/zoneinfo/Europe/Paris")
	if !has(rep.Kept, "/etc/localtime") {
		t.Errorf("kept = %v", rep.Kept)
	}
}

func TestTypeChanges(t *testing.T) {
	f := newFixture(t)
	// Admin: file → directory, image unchanged.
	mustRemove(t, filepath.Join(f.running, "etc/conf.d/a"))
	writeFile(t, filepath.Join(f.running, "etc/conf.d/a/part1"), "p1\n", 0o644)
	// Admin: directory → symlink, image unchanged.
	mustRemove(t, filepath.Join(f.running, "etc/deep"))
	mustSymlink(t, "conf.d", filepath.Join(f.running, "etc/deep"))
	// Admin: symlink → file, image unchanged.
	mustRemove(t, filepath.Join(f.running, "etc/localtime"))
	writeFile(t, filepath.Join(f.running, "etc/localtime"), "TZif\n", 0o644)
	// Admin changed a file, the image made it a directory: conflict.
	writeFile(t, filepath.Join(f.running, "etc/motd"), "admin motd\n", 0o644)
	mustRemove(t, filepath.Join(f.newL, "etc/motd"))
	writeFile(t, filepath.Join(f.newL, "etc/motd/10-v2"), "v2\n", 0o644)
	// Admin made a directory a file, the image changed inside: conflict.
	mustRemove(t, filepath.Join(f.running, "etc/ssh"))
	writeFile(t, filepath.Join(f.running, "etc/ssh"), "not a dir\n", 0o644)
	writeFile(t, filepath.Join(f.newL, "etc/ssh/ssh_config"), "new\n", 0o644)

	rep := f.run()
	assertContent(t, filepath.Join(f.newL, "etc/conf.d/a/part1"), "p1\n")
	assertLink(t, filepath.Join(f.newL, "etc/deep"), "conf.d")
	assertContent(t, filepath.Join(f.newL, "etc/localtime"), "TZif\n")
	if st := lstat(t, filepath.Join(f.newL, "etc/localtime")); st.Mode&unix.S_IFMT != unix.S_IFREG {
		t.Errorf("localtime is not a regular file")
	}
	assertContent(t, filepath.Join(f.newL, "etc/motd"), "admin motd\n")
	assertContent(t, filepath.Join(f.newL, "etc/motd.imgnew/10-v2"), "v2\n")
	assertContent(t, filepath.Join(f.newL, "etc/ssh"), "not a dir\n")
	assertContent(t, filepath.Join(f.newL, "etc/ssh.imgnew/ssh_config"), "new\n")
	for _, p := range []string{"/etc/conf.d/a", "/etc/deep", "/etc/localtime"} {
		if !has(rep.Kept, p) {
			t.Errorf("kept = %v, want %s", rep.Kept, p)
		}
	}
	for _, p := range []string{"/etc/motd", "/etc/ssh"} {
		if c := conflictAt(rep, p); c == nil || c.ImageCopy != p+".imgnew" {
			t.Errorf("conflict %s = %+v", p, c)
		}
	}
}

func TestDirectoryBecameFileOnBothSidesMergesChildren(t *testing.T) {
	f := newFixture(t)
	// The old base had a file; both now have a directory.
	for _, root := range []string{f.running, f.newL} {
		mustRemove(t, filepath.Join(root, "etc/hostname"))
	}
	writeFile(t, filepath.Join(f.running, "etc/hostname/admin"), "a\n", 0o644)
	writeFile(t, filepath.Join(f.newL, "etc/hostname/image"), "i\n", 0o644)
	f.run()
	assertContent(t, filepath.Join(f.newL, "etc/hostname/admin"), "a\n")
	assertContent(t, filepath.Join(f.newL, "etc/hostname/image"), "i\n")
}

func TestHardLinksPreserved(t *testing.T) {
	f := newFixture(t)
	a := filepath.Join(f.running, "etc/hl/a")
	writeFile(t, a, "linked\n", 0o644)
	if err := os.Link(a, filepath.Join(f.running, "etc/hl/b")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(a, filepath.Join(f.running, "etc/hl-c")); err != nil {
		t.Fatal(err)
	}
	f.run()
	sa := lstat(t, filepath.Join(f.newL, "etc/hl/a"))
	sb := lstat(t, filepath.Join(f.newL, "etc/hl/b"))
	sc := lstat(t, filepath.Join(f.newL, "etc/hl-c"))
	if sa.Ino != sb.Ino || sa.Ino != sc.Ino || sa.Nlink != 3 {
		t.Errorf("inodes %d %d %d nlink %d, want one inode with 3 links", sa.Ino, sb.Ino, sc.Ino, sa.Nlink)
	}
	assertContent(t, filepath.Join(f.newL, "etc/hl-c"), "linked\n")
}

func TestSpecialFiles(t *testing.T) {
	needRoot(t)
	f := newFixture(t)
	if err := unix.Mkfifo(filepath.Join(f.running, "etc/fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(f.running, "etc/fifo"), 0o620); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(f.running, "etc/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	f.run()
	st := lstat(t, filepath.Join(f.newL, "etc/fifo"))
	if st.Mode&unix.S_IFMT != unix.S_IFIFO || st.Mode&0o7777 != 0o620 {
		t.Errorf("fifo mode %o", st.Mode)
	}
	st = lstat(t, filepath.Join(f.newL, "etc/null"))
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
		t.Errorf("char device mode %o rdev %d", st.Mode, st.Rdev)
	}
}

func TestStaleImgnewNotCarried(t *testing.T) {
	f := newFixture(t)
	writeFile(t, filepath.Join(f.running, "etc/hostname.imgnew"), "old conflict\n", 0o644)
	f.run()
	assertMissing(t, filepath.Join(f.newL, "etc/hostname.imgnew"))
}

func TestSymlinkedEtcRefused(t *testing.T) {
	f := newFixture(t)
	outside := t.TempDir()
	mustRemove(t, filepath.Join(f.running, "etc"))
	mustSymlink(t, outside, filepath.Join(f.running, "etc"))
	_, err := Etc(context.Background(), f.roots, quietLog())
	var nd *NotDirError
	if !errors.As(err, &nd) || nd.Layer != "running layer" {
		t.Fatalf("err = %v, want NotDirError for the running layer", err)
	}
	if _, err := os.Stat(filepath.Join(f.newL, "etc/passwd")); err != nil {
		t.Errorf("new layer's /etc damaged: %v", err)
	}
}

func TestContextCancelled(t *testing.T) {
	f := newFixture(t)
	writeFile(t, filepath.Join(f.running, "etc/hostname"), "x\n", 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Etc(ctx, f.roots, quietLog()); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestExtraPaths(t *testing.T) {
	f := newFixture(t)
	writeFile(t, filepath.Join(f.running, "root/.ssh/authorized_keys"), "ssh-ed25519 AAA admin\n", 0o600)
	if err := os.MkdirAll(filepath.Join(f.newL, "root"), 0o700); err != nil {
		t.Fatal(err)
	}
	rep, err := Paths(context.Background(), f.roots, []string{"etc", "/root/.ssh"}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	assertContent(t, filepath.Join(f.newL, "root/.ssh/authorized_keys"), "ssh-ed25519 AAA admin\n")
	if !has(rep.Added, "/root/.ssh") {
		t.Errorf("added = %v", rep.Added)
	}
}

func TestGeneratedFilesTakenFromImage(t *testing.T) {
	f := newFixture(t)
	for _, root := range []string{f.old, f.running, f.newL} {
		writeFile(t, filepath.Join(root, "etc/passwd-"), "old backup\n", 0o600)
		writeFile(t, filepath.Join(root, "etc/ld.so.cache"), "cache v1", 0o644)
	}
	writeFile(t, filepath.Join(f.running, "etc/passwd-"), "admin backup\n", 0o600)
	writeFile(t, filepath.Join(f.running, "etc/ld.so.cache"), "cache admin", 0o644)
	writeFile(t, filepath.Join(f.newL, "etc/passwd-"), "image backup\n", 0o600)
	writeFile(t, filepath.Join(f.newL, "etc/ld.so.cache"), "cache v2", 0o644)
	rep := f.run()
	assertContent(t, filepath.Join(f.newL, "etc/passwd-"), "image backup\n")
	assertContent(t, filepath.Join(f.newL, "etc/ld.so.cache"), "cache v2")
	if rep.Conflicted() {
		t.Errorf("conflicts on generated files: %+v", rep.Conflicts)
	}
}

// What imgbase writes into the new root itself (its units) is neither
// carried nor reported as the admin's; subuid-/subgid- backups are
// generated like passwd-.
func TestOwnedPathsLeftOut(t *testing.T) {
	f := newFixture(t)
	for _, root := range []string{f.old, f.running, f.newL} {
		writeFile(t, filepath.Join(root, "etc/systemd/system/multi-user.target.wants/.keep"), "", 0o644)
	}
	writeFile(t, filepath.Join(f.running, "etc/systemd/system/imgbase-x.service"), "imgbase's\n", 0o644)
	mustSymlink(t, "../imgbase-x.service", filepath.Join(f.running, "etc/systemd/system/multi-user.target.wants/imgbase-x.service"))
	writeFile(t, filepath.Join(f.running, "etc/systemd/system/admin.service"), "admin's\n", 0o644)
	writeFile(t, filepath.Join(f.running, "etc/subuid-"), "backup\n", 0o644)
	f.roots.Owned = []string{"etc/systemd/system/imgbase-x.service", "/etc/systemd/system/multi-user.target.wants/imgbase-x.service"}
	rep := f.run()
	assertMissing(t, filepath.Join(f.newL, "etc/systemd/system/imgbase-x.service"))
	assertMissing(t, filepath.Join(f.newL, "etc/systemd/system/multi-user.target.wants/imgbase-x.service"))
	assertMissing(t, filepath.Join(f.newL, "etc/subuid-"))
	assertContent(t, filepath.Join(f.newL, "etc/systemd/system/admin.service"), "admin's\n")
	for _, p := range rep.Added {
		if strings.Contains(p, "imgbase-x") || strings.Contains(p, "subuid") {
			t.Errorf("reported as added by the admin: %s", p)
		}
	}
	if !has(rep.Added, "/etc/systemd/system/admin.service") {
		t.Errorf("the admin's unit is not reported: %v", rep.Added)
	}

	// Where the images ship no /etc/systemd, the admin's whole tree is
	// copied, still without imgbase's own files.
	f2 := newFixture(t)
	writeFile(t, filepath.Join(f2.running, "etc/systemd/system/imgbase-x.service"), "imgbase's\n", 0o644)
	writeFile(t, filepath.Join(f2.running, "etc/systemd/system/admin.service"), "admin's\n", 0o644)
	f2.roots.Owned = f.roots.Owned
	f2.run()
	assertMissing(t, filepath.Join(f2.newL, "etc/systemd/system/imgbase-x.service"))
	assertContent(t, filepath.Join(f2.newL, "etc/systemd/system/admin.service"), "admin's\n")
}

// The host's identity and records stay the running layer's, whatever the
// images ship, and are no conflict.
func TestHostStateAlwaysCarried(t *testing.T) {
	f := newFixture(t)
	for _, root := range []string{f.old, f.newL} {
		writeFile(t, filepath.Join(root, "etc/machine-id"), "image-id\n", 0o444)
		writeFile(t, filepath.Join(root, "etc/lvm/backup/vg0"), "image", 0o600)
	}
	writeFile(t, filepath.Join(f.running, "etc/machine-id"), "host-id\n", 0o444)
	writeFile(t, filepath.Join(f.running, "etc/lvm/backup/HostVG"), "host vg", 0o600)
	writeFile(t, filepath.Join(f.running, "etc/ssh/ssh_host_ed25519_key"), "key", 0o600)
	rep := f.run()
	assertContent(t, filepath.Join(f.newL, "etc/machine-id"), "host-id\n")
	assertContent(t, filepath.Join(f.newL, "etc/lvm/backup/HostVG"), "host vg")
	assertContent(t, filepath.Join(f.newL, "etc/ssh/ssh_host_ed25519_key"), "key")
	if len(rep.Conflicts) != 0 {
		t.Errorf("conflicts %+v", rep.Conflicts)
	}
}

// With the running tree a snapshot of the old base, an entry with the
// same inode and change time is unchanged without being read; without
// nanoseconds in the change time, or without the snapshot relation, it is
// read (here: opening fails, as the nodes stand for no real file).
func TestSameNodeSnapshotShortcut(t *testing.T) {
	mk := func(nsec int64) *node {
		return &node{dirfd: -1, name: "f", rel: "etc/f", kind: kindFile, size: 10, ino: 42,
			ctime: unix.Timespec{Sec: 1700000000, Nsec: nsec}}
	}
	if same, err := sameNode(mk(5), mk(5), true); !same || err != nil {
		t.Errorf("untouched entry of a snapshot: %v, %v", same, err)
	}
	if _, err := sameNode(mk(5), mk(5), false); err == nil {
		t.Error("without the snapshot relation the content must be read")
	}
	if _, err := sameNode(mk(0), mk(0), true); err == nil {
		t.Error("a change time in whole seconds must not be trusted")
	}
	changed := mk(5)
	changed.ctime.Nsec = 6
	changed.perm = 0o600
	if same, err := sameNode(mk(5), changed, true); same || err != nil {
		t.Errorf("changed entry: %v, %v", same, err)
	}
}
