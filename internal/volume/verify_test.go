package volume

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// tree makes a source tree with every kind of entry the copy must keep.
func tree(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "d/e"), 0o750))
	must(os.WriteFile(filepath.Join(src, "d/f"), []byte("data"), 0o640))
	must(os.Link(filepath.Join(src, "d/f"), filepath.Join(src, "d/e/hard")))
	must(os.Symlink("../f", filepath.Join(src, "d/e/sym")))
	must(os.Chown(filepath.Join(src, "d/e"), 65534, 65534))
	must(os.Chmod(src, 0o1777))
	// A sparse file of 1 GiB with 6 bytes of data in the middle.
	sp, err := os.Create(filepath.Join(src, "sparse"))
	must(err)
	must(sp.Truncate(1 << 30))
	_, err = sp.WriteAt([]byte("middle"), 512<<20)
	must(err)
	must(sp.Close())
	if err := unix.Lsetxattr(filepath.Join(src, "d/f"), "user.test", []byte("v"), 0); err != nil {
		t.Logf("no user xattrs here: %v", err)
	}
	return src
}

func copyOf(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	if out, err := exec.Command("cp", "-ax", "--sparse=always", src+"/.", dst+"/").CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return dst
}

func TestVerifyCopyAcceptsCpA(t *testing.T) {
	src := tree(t)
	dst := copyOf(t, src)
	changed, err := VerifyCopy(src, dst, time.Time{})
	if err != nil || len(changed) != 0 {
		t.Fatalf("VerifyCopy: %v %v", changed, err)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(dst, "sparse"), &st); err != nil || st.Blocks*512 > 1<<20 {
		t.Errorf("the copy of the sparse file uses %d bytes", st.Blocks*512)
	}
}

func TestVerifyCopyFindsEveryDifference(t *testing.T) {
	cases := []struct {
		name, path, what string
		spoil            func(dst string) error
	}{
		{"missing", "d/e/sym", "missing", func(d string) error { return os.Remove(filepath.Join(d, "d/e/sym")) }},
		{"mode", "d", "mode", func(d string) error { return os.Chmod(filepath.Join(d, "d"), 0o755) }},
		{"top mode", ".", "mode", func(d string) error { return os.Chmod(d, 0o755) }},
		{"owner", "d/e", "owner", func(d string) error { return os.Lchown(filepath.Join(d, "d/e"), 0, 0) }},
		{"symlink", "d/e/sym", "symlink", func(d string) error {
			os.Remove(filepath.Join(d, "d/e/sym"))
			return os.Symlink("../g", filepath.Join(d, "d/e/sym"))
		}},
		{"content", "d/e/hard", "content", func(d string) error { return rewrite(filepath.Join(d, "d/f"), "dada") }},
		{"size", "d/e/hard", "size", func(d string) error { return rewrite(filepath.Join(d, "d/f"), "more data") }},
		{"data in a hole", "sparse", "content", func(d string) error {
			f, err := os.OpenFile(filepath.Join(d, "sparse"), os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.WriteAt([]byte("x"), 900<<20)
			return err
		}},
		{"hard link", "d/f", "hard link", func(d string) error {
			// d/e/hard is walked first: make d/f an identical but separate file.
			p := filepath.Join(d, "d/f")
			if out, err := exec.Command("cp", "-a", p, p+".tmp").CombinedOutput(); err != nil {
				return errors.New(string(out))
			}
			return os.Rename(p+".tmp", p)
		}},
		{"mtime", "d/e/hard", "modification time", func(d string) error {
			return os.Chtimes(filepath.Join(d, "d/f"), time.Unix(1, 0), time.Unix(1, 0))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := tree(t)
			dst := copyOf(t, src)
			if err := tc.spoil(dst); err != nil {
				t.Fatal(err)
			}
			_, err := VerifyCopy(src, dst, time.Time{})
			var mm *MismatchError
			if !errors.As(err, &mm) || mm.Path != tc.path || !strings.Contains(mm.What, tc.what) {
				t.Errorf("error %v; want a mismatch of %s (%s)", err, tc.path, tc.what)
			}
		})
	}
}

func TestVerifyCopyXattrs(t *testing.T) {
	src := tree(t)
	if _, err := unix.Lgetxattr(filepath.Join(src, "d/f"), "user.test", nil); err != nil {
		t.Skipf("this filesystem has no user xattrs: %v", err)
	}
	dst := copyOf(t, src)
	if _, err := VerifyCopy(src, dst, time.Time{}); err != nil {
		t.Fatalf("cp -a kept the xattr, yet: %v", err)
	}
	if err := unix.Lremovexattr(filepath.Join(dst, "d/f"), "user.test"); err != nil {
		t.Fatal(err)
	}
	_, err := VerifyCopy(src, dst, time.Time{})
	var mm *MismatchError
	// d/e/hard, the same inode, is walked first.
	if !errors.As(err, &mm) || mm.Path != "d/e/hard" || !strings.Contains(mm.What, "user.test") {
		t.Errorf("error %v; want a missing xattr", err)
	}
}

func TestVerifyCopySkipsWhatChangedSince(t *testing.T) {
	src := tree(t)
	dst := copyOf(t, src)
	time.Sleep(2 * clockLag)
	since := time.Now().Add(-clockLag)
	if err := rewrite(filepath.Join(src, "d/f"), "newer data"); err != nil {
		t.Fatal(err)
	}
	changed, err := VerifyCopy(src, dst, since)
	if err != nil {
		t.Fatal(err)
	}
	// d/f and d/e/hard are one inode; d, whose mtime the rewrite does not
	// touch, is compared.
	if strings.Join(changed, ",") != "d/e/hard,d/f" {
		t.Errorf("changed %v", changed)
	}
	// Without since the change is a mismatch.
	if _, err := VerifyCopy(src, dst, time.Time{}); err == nil {
		t.Error("a changed file passed verification")
	}
}

func rewrite(p, content string) error {
	st, err := os.Lstat(p)
	if err != nil {
		return err
	}
	if err := os.WriteFile(p, []byte(content), 0); err != nil {
		return err
	}
	return os.Chtimes(p, st.ModTime(), st.ModTime())
}

func TestUnion(t *testing.T) {
	got := union([][2]int64{{0, 10}, {50, 60}}, [][2]int64{{5, 20}, {30, 40}, {60, 70}})
	want := [][2]int64{{0, 20}, {30, 40}, {50, 70}}
	if len(got) != len(want) {
		t.Fatalf("%v", got)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("%v, want %v", got, want)
		}
	}
}

// BenchmarkVerifyCopy verifies a copy of 1,000 files of 4 KiB.
func BenchmarkVerifyCopy(b *testing.B) {
	src := b.TempDir()
	for i := 0; i < 1000; i++ {
		d := filepath.Join(src, "d"+strconv.Itoa(i%10))
		os.MkdirAll(d, 0o755)
		if err := os.WriteFile(filepath.Join(d, strconv.Itoa(i)), bytes.Repeat([]byte{byte(i)}, 4096), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	dst := b.TempDir()
	if out, err := exec.Command("cp", "-ax", "--sparse=always", src+"/.", dst+"/").CombinedOutput(); err != nil {
		b.Fatalf("cp: %v %s", err, out)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := VerifyCopy(src, dst, time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
}
