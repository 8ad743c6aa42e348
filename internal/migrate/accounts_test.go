package migrate

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

func TestAccountsMergedByName(t *testing.T) {
	needRoot(t)
	f := newFixture(t)
	// The admin: changes root's shell and password, adds alice (and puts
	// her in wheel), adds svc and bob, deletes games, and adds a key
	// owned by sshd (uid 100).
	writeFile(t, filepath.Join(f.running, "etc/passwd"), lines(
		"root:x:0:0:root:/root:/bin/zsh",
		"daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
		"sshd:x:100:65534::/run/sshd:/usr/sbin/nologin",
		"alice:x:1000:1000:Alice:/home/alice:/bin/bash",
		"svc:x:1001:1001::/srv:/sbin/nologin",
		"bob:x:1002:1002::/home/bob:/bin/sh",
	), 0o644)
	writeFile(t, filepath.Join(f.running, "etc/shadow"), lines(
		"root:$6$admin:19500:0:99999:7:::",
		"daemon:*:19000:0:99999:7:::",
		"sshd:!:19000::::::",
		"alice:$6$alice:19500:0:99999:7:::",
		"svc:!:19500::::::",
		"bob:!:19500::::::",
	), 0o640)
	writeFile(t, filepath.Join(f.running, "etc/group"), lines(
		"root:x:0:", "daemon:x:1:", "wheel:x:10:root,alice", "games:x:60:", "alice:x:1000:",
	), 0o644)
	writeFile(t, filepath.Join(f.running, "etc/gshadow"), lines(
		"root:*::", "daemon:*::", "wheel:*::root,alice", "games:*::", "alice:!::",
	), 0o640)
	key := filepath.Join(f.running, "etc/ssh/ssh_host_key")
	writeFile(t, key, "KEY\n", 0o600)
	if err := os.Lchown(key, 100, 1000); err != nil {
		t.Fatal(err)
	}
	// The image: renames daemon's gecos, renumbers sshd, adds chrony, svc
	// (another uid) and carl (bob's uid), adds operator to wheel.
	writeFile(t, filepath.Join(f.newL, "etc/passwd"), lines(
		"root:x:0:0:root:/root:/bin/bash",
		"daemon:x:1:1:Daemon v2:/usr/sbin:/usr/sbin/nologin",
		"games:x:5:60:games:/usr/games:/usr/sbin/nologin",
		"sshd:x:101:65534::/run/sshd:/usr/sbin/nologin",
		"chrony:x:995:995::/var/lib/chrony:/sbin/nologin",
		"svc:x:994:994::/srv:/sbin/nologin",
		"carl:x:1002:1002::/home/carl:/bin/sh",
	), 0o644)
	writeFile(t, filepath.Join(f.newL, "etc/group"), lines(
		"root:x:0:", "daemon:x:1:", "wheel:x:10:root,operator", "games:x:60:", "chrony:x:995:",
	), 0o644)
	writeFile(t, filepath.Join(f.newL, "etc/shadow"), lines(
		"root:*:19000:0:99999:7:::",
		"daemon:*:19000:0:99999:7:::",
		"games:*:19000:0:99999:7:::",
		"sshd:!:19000::::::",
		"chrony:!:19600::::::",
	), 0o600)

	rep := f.run()

	assertContent(t, filepath.Join(f.newL, "etc/passwd"), lines(
		"root:x:0:0:root:/root:/bin/zsh",
		"daemon:x:1:1:Daemon v2:/usr/sbin:/usr/sbin/nologin",
		"sshd:x:101:65534::/run/sshd:/usr/sbin/nologin",
		"chrony:x:995:995::/var/lib/chrony:/sbin/nologin",
		"svc:x:1001:1001::/srv:/sbin/nologin",
		"carl:x:1002:1002::/home/carl:/bin/sh",
		"alice:x:1000:1000:Alice:/home/alice:/bin/bash",
		"bob:x:1002:1002::/home/bob:/bin/sh",
	))
	assertContent(t, filepath.Join(f.newL, "etc/shadow"), lines(
		"root:$6$admin:19500:0:99999:7:::",
		"daemon:*:19000:0:99999:7:::",
		"sshd:!:19000::::::",
		"chrony:!:19600::::::",
		"alice:$6$alice:19500:0:99999:7:::",
		"svc:!:19500::::::",
		"bob:!:19500::::::",
	))
	assertContent(t, filepath.Join(f.newL, "etc/group"), lines(
		"root:x:0:", "daemon:x:1:", "wheel:x:10:root,operator,alice", "games:x:60:", "chrony:x:995:", "alice:x:1000:",
	))
	assertContent(t, filepath.Join(f.newL, "etc/gshadow"), lines(
		"root:*::", "daemon:*::", "wheel:*::root,alice", "games:*::", "alice:!::",
	))
	// The image's mode of shadow (0600) is kept, not the admin's file's.
	if st := lstat(t, filepath.Join(f.newL, "etc/shadow")); st.Mode&0o7777 != 0o600 {
		t.Errorf("shadow mode %o, want the image's 600", st.Mode&0o7777)
	}
	// sshd is 101 in the new image: the admin's key follows the name.
	if st := lstat(t, filepath.Join(f.newL, "etc/ssh/ssh_host_key")); st.Uid != 101 || st.Gid != 1000 {
		t.Errorf("key owner %d:%d, want 101:1000", st.Uid, st.Gid)
	}
	if len(rep.Remapped) != 1 || rep.Remapped[0] != (Remap{ID: "uid", From: 100, To: 101}) {
		t.Errorf("remapped = %+v", rep.Remapped)
	}

	want := map[string]string{ // name → change, in /etc/passwd
		"root": "kept", "alice": "added", "bob": "added", "games": "deleted", "svc": "clash", "carl,bob": "clash",
	}
	got := map[string]string{}
	for _, a := range rep.Accounts {
		if a.File == "/etc/passwd" {
			got[a.Name] = a.Change
		}
	}
	for name, change := range want {
		if got[name] != change {
			t.Errorf("/etc/passwd %s: change %q, want %q (all: %+v)", name, got[name], change, rep.Accounts)
		}
	}
	var clashes int
	for _, c := range rep.Conflicts {
		if c.Path == "/etc/passwd" {
			clashes++
		}
	}
	if clashes != 2 {
		t.Errorf("%d /etc/passwd conflicts, want 2 (svc uid, uid 1002): %+v", clashes, rep.Conflicts)
	}
}

func TestAccountsUntouchedByAdminTakeImage(t *testing.T) {
	f := newFixture(t)
	img := lines("root:x:0:0:root:/root:/bin/bash", "chrony:x:995:995::/var/lib/chrony:/sbin/nologin")
	writeFile(t, filepath.Join(f.newL, "etc/passwd"), img, 0o644)
	rep := f.run()
	assertContent(t, filepath.Join(f.newL, "etc/passwd"), img)
	if len(rep.Accounts) != 0 {
		t.Errorf("accounts = %+v", rep.Accounts)
	}
}

func TestMergeAccountsCases(t *testing.T) {
	passwd := accountFormats[0]
	group := accountFormats[1]
	db := func(ls ...string) *accountDB { return parseAccounts([]byte(lines(ls...))) }
	empty := &accountDB{index: map[string]int{}}
	for _, tc := range []struct {
		name    string
		f       accountFormat
		o, r, n *accountDB
		want    string
		changes []string
	}{
		{"both add different users", passwd, empty,
			db("a:x:1000:1000::/a:/bin/sh"), db("b:x:994:994::/b:/bin/sh"),
			lines("b:x:994:994::/b:/bin/sh", "a:x:1000:1000::/a:/bin/sh"), []string{"added"}},
		{"both change different fields of one user", passwd, db("u:x:1:1:gecos:/h:/bin/sh"),
			db("u:x:1:1:gecos:/h:/bin/zsh"), db("u:x:1:1:new gecos:/h:/bin/sh"),
			lines("u:x:1:1:new gecos:/h:/bin/zsh"), []string{"kept"}},
		{"both change the shell", passwd, db("u:x:1:1::/h:/bin/sh"),
			db("u:x:1:1::/h:/bin/zsh"), db("u:x:1:1::/h:/bin/bash"),
			lines("u:x:1:1::/h:/bin/zsh"), []string{"conflict"}},
		{"image removes a user the admin changed", passwd, db("u:x:1:1::/h:/bin/sh"),
			db("u:x:1:1::/h:/bin/zsh"), empty,
			lines("u:x:1:1::/h:/bin/zsh"), []string{"conflict"}},
		{"image removes an untouched user", passwd, db("u:x:1:1::/h:/bin/sh"),
			db("u:x:1:1::/h:/bin/sh"), empty, "", nil},
		{"admin deletes a user the image changed", passwd, db("u:x:1:1::/h:/bin/sh"),
			empty, db("u:x:1:1::/h:/bin/bash"), "", []string{"conflict"}},
		{"members: admin adds and removes, image adds", group, db("g:x:10:a,b"),
			db("g:x:10:a,c"), db("g:x:10:a,b,d"),
			lines("g:x:10:a,d,c"), []string{"kept"}},
		{"same uid given to two names", passwd, empty,
			db("a:x:1000:1000::/a:/bin/sh"), db("b:x:1000:1000::/b:/bin/sh"),
			lines("b:x:1000:1000::/b:/bin/sh", "a:x:1000:1000::/a:/bin/sh"), []string{"added", "clash"}},
		{"root and toor share uid 0 on purpose", passwd, db("root:x:0:0::/root:/bin/sh", "toor:x:0:0::/root:/bin/sh"),
			db("root:x:0:0::/root:/bin/zsh", "toor:x:0:0::/root:/bin/sh"), db("root:x:0:0::/root:/bin/sh", "toor:x:0:0::/root:/bin/sh"),
			lines("root:x:0:0::/root:/bin/zsh", "toor:x:0:0::/root:/bin/sh"), []string{"kept"}},
		{"opaque lines carried", passwd, db("#c", "+@nis"), db("#c", "+@nis", "# admin"), db("#c"),
			lines("#c", "# admin"), []string{"added"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, notes := mergeAccounts(tc.f, tc.o, tc.r, tc.n)
			if got := string(out.format()); got != tc.want {
				t.Errorf("merged:\n%s\nwant:\n%s", got, tc.want)
			}
			var changes []string
			for _, n := range notes {
				changes = append(changes, n.change)
			}
			if strings.Join(changes, " ") != strings.Join(tc.changes, " ") {
				t.Errorf("changes %v, want %v (%+v)", changes, tc.changes, notes)
			}
		})
	}
}

func TestParseAccountsKeepsOddLines(t *testing.T) {
	in := "root:x:0:0::/root:/bin/sh\n\n# comment\n+@nis::::::\nbroken\nroot:x:0:0:dup:/:/bin/sh\n"
	db := parseAccounts([]byte(in))
	want := "root:x:0:0::/root:/bin/sh\n# comment\n+@nis::::::\nbroken\nroot:x:0:0:dup:/:/bin/sh\n"
	if got := string(db.format()); got != want {
		t.Errorf("format = %q, want %q", got, want)
	}
	if e, _ := db.get("root"); e.field(4) != "" {
		t.Errorf("the first root entry must be the named one, got %q", e.line())
	}
}

// FuzzParseAccounts checks that parsing never panics, that formatting a
// parse is a fixed point, and that merging a database with itself on all
// sides or with an empty admin side is stable.
func FuzzParseAccounts(f *testing.F) {
	f.Add([]byte("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/:/sbin/nologin\n"))
	f.Add([]byte("wheel:x:10:root,alice\n# c\n+::::::\n\n::\n:x\nroot:dup\n"))
	f.Add([]byte("a:b\r\nc\x00:d\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		db := parseAccounts(data)
		once := db.format()
		again := parseAccounts(once).format()
		if !bytes.Equal(once, again) {
			t.Fatalf("format(parse) is not a fixed point:\n%q\n%q", once, again)
		}
		for _, format := range accountFormats {
			out, notes := mergeAccounts(format, db, db, db)
			if !bytes.Equal(out.format(), once) {
				t.Fatalf("%s: merging a database with itself changed it:\n%q\n%q", format.file, once, out.format())
			}
			for _, n := range notes {
				if n.change != "clash" {
					t.Fatalf("%s: self-merge noted %+v", format.file, n)
				}
			}
			// The image's database with an untouched admin side is the image's.
			empty := parseAccounts(nil)
			out, _ = mergeAccounts(format, empty, empty, db)
			if !bytes.Equal(out.format(), once) {
				t.Fatalf("%s: untouched admin side changed the image's database", format.file)
			}
		}
	})
}

func TestRenumberedUserFollowedWhenAdminLeftPasswdAlone(t *testing.T) {
	needRoot(t)
	f := newFixture(t)
	writeFile(t, filepath.Join(f.newL, "etc/passwd"), strings.Replace(baseFiles["etc/passwd"], "sshd:x:100:", "sshd:x:101:", 1), 0o644)
	writeFile(t, filepath.Join(f.newL, "etc/group"), strings.Replace(baseFiles["etc/group"], "games:x:60:", "games:x:61:", 1), 0o644)
	key := filepath.Join(f.running, "etc/ssh/key")
	writeFile(t, key, "k\n", 0o600)
	if err := os.Lchown(key, 100, 60); err != nil {
		t.Fatal(err)
	}
	// An ACL naming sshd and games follows them too; other ids stay.
	acl := func(user, group uint32) []byte {
		return posixACL([3]uint32{aclUserObj, 6, aclUndefinedID}, [3]uint32{aclUser, 4, user}, [3]uint32{aclUser, 4, 7},
			[3]uint32{aclGroupObj, 4, aclUndefinedID}, [3]uint32{aclGroup, 4, group},
			[3]uint32{aclMask, 4, aclUndefinedID}, [3]uint32{aclOther, 0, aclUndefinedID})
	}
	withACL := filepath.Join(f.running, "etc/ssh/acl")
	writeFile(t, withACL, "a\n", 0o640)
	if err := unix.Setxattr(withACL, "system.posix_acl_access", acl(100, 60), 0); err != nil {
		t.Skipf("no ACL support: %v", err)
	}
	rep := f.run()
	if st := lstat(t, filepath.Join(f.newL, "etc/ssh/key")); st.Uid != 101 || st.Gid != 61 {
		t.Errorf("owner %d:%d, want 101:61", st.Uid, st.Gid)
	}
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(filepath.Join(f.newL, "etc/ssh/acl"), "system.posix_acl_access", buf)
	if err != nil {
		t.Fatal(err)
	}
	if want := acl(101, 61); !bytes.Equal(buf[:n], want) {
		t.Errorf("ACL %x, want %x", buf[:n], want)
	}
	assertContent(t, filepath.Join(f.newL, "etc/passwd"), strings.Replace(baseFiles["etc/passwd"], "sshd:x:100:", "sshd:x:101:", 1))
	if len(rep.Remapped) != 2 {
		t.Errorf("remapped = %+v", rep.Remapped)
	}
}
