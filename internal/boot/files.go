package boot

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/imgbase/imgbase/internal/atomicfile"
)

// Files is how the Manager changes /boot. Every change is one of these
// operations, each atomic on its own, so a crash falls between two of them;
// the crash test counts on that.
type Files interface {
	WriteFile(path string, data []byte, perm os.FileMode) error
	// CopyFile copies src to dst atomically (temporary file, fsync, rename).
	CopyFile(dst, src string) error
	MkdirAll(dir string) error
	// Remove removes a file or an empty directory; a missing one is fine.
	Remove(path string) error
}

// Disk changes the real files.
type Disk struct{}

func (Disk) WriteFile(path string, data []byte, perm os.FileMode) error {
	return atomicfile.Write(path, data, perm)
}

func (Disk) MkdirAll(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot create %s: %w", dir, err)
	}
	return nil
}

func (Disk) Remove(path string) error {
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("cannot remove %s: %w", path, err)
	}
	return atomicfile.SyncDir(filepath.Dir(path))
}

// CopyFile copies src to dst atomically. When another layer's directory
// beside dst's already holds an identical file (layers of one base share
// their kernel), dst becomes a hard link to it: /boot is small, and a link
// costs no writes.
func (Disk) CopyFile(dst, src string) error {
	if twin := findTwin(dst, src); twin != "" {
		if err := linkAtomic(twin, dst); err == nil {
			return nil
		}
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("cannot copy %s: %w", src, err)
	}
	defer in.Close()
	dir := filepath.Dir(dst)
	out, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".tmp*")
	if err != nil {
		return fmt.Errorf("cannot copy %s to %s: %w", src, dst, err)
	}
	ok := false
	defer func() {
		if !ok {
			out.Close()
			os.Remove(out.Name())
		}
	}()
	if _, err := io.Copy(out, in); err != nil {
		return fmt.Errorf("cannot copy %s to %s: %w", src, dst, err)
	}
	if err := out.Chmod(0o644); err != nil {
		return fmt.Errorf("cannot copy %s to %s: %w", src, dst, err)
	}
	if err := out.Sync(); err != nil {
		return fmt.Errorf("cannot copy %s to %s: %w", src, dst, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("cannot copy %s to %s: %w", src, dst, err)
	}
	if err := os.Rename(out.Name(), dst); err != nil {
		return fmt.Errorf("cannot copy %s to %s: %w", src, dst, err)
	}
	ok = true
	return atomicfile.SyncDir(dir)
}

// Print describes every change on Out instead of making it: imgbase --dry.
type Print struct{ Out io.Writer }

func (p Print) WriteFile(path string, data []byte, _ os.FileMode) error {
	fmt.Fprintf(p.Out, "write %s:\n", path)
	if isText(data) {
		for _, line := range splitLines(string(data)) {
			if len(line) > 40 && strings.Trim(line, "#") == "" {
				// grubenv's padding
				fmt.Fprintf(p.Out, "  | (%d bytes of '#')\n", len(line))
				continue
			}
			fmt.Fprintf(p.Out, "  | %s\n", line)
		}
	} else {
		fmt.Fprintf(p.Out, "  (%d bytes)\n", len(data))
	}
	return nil
}

func (p Print) CopyFile(dst, src string) error {
	_, err := fmt.Fprintf(p.Out, "copy %s %s\n", src, dst)
	return err
}

func (p Print) MkdirAll(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	_, err := fmt.Fprintf(p.Out, "mkdir -p %s\n", dir)
	return err
}

func (p Print) Remove(path string) error {
	_, err := fmt.Fprintf(p.Out, "remove %s\n", path)
	return err
}

func isText(b []byte) bool {
	for _, c := range b {
		if c == 0 {
			return false
		}
	}
	return true
}

func splitLines(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		out = append(out, s[:i])
		if i < len(s) {
			i++
		}
		s = s[i:]
	}
	return out
}

// findTwin returns a file named like dst in a sibling directory of dst's
// whose content equals src's, or "".
func findTwin(dst, src string) string {
	st, err := os.Stat(src)
	if err != nil || !st.Mode().IsRegular() {
		return ""
	}
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(filepath.Dir(dst)), "*", filepath.Base(dst)))
	for _, m := range matches {
		if m == dst {
			continue
		}
		if ms, err := os.Lstat(m); err == nil && ms.Mode().IsRegular() && ms.Size() == st.Size() && sameContent(m, src) {
			return m
		}
	}
	return ""
}

func sameContent(a, b string) bool {
	fa, err := os.Open(a)
	if err != nil {
		return false
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false
	}
	defer fb.Close()
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false
		}
		if ea != nil || eb != nil {
			return (ea == io.EOF || ea == io.ErrUnexpectedEOF) && (eb == io.EOF || eb == io.ErrUnexpectedEOF)
		}
	}
}

// linkAtomic makes dst a hard link to src, replacing dst atomically.
func linkAtomic(src, dst string) error {
	tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".link")
	os.Remove(tmp)
	if err := os.Link(src, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return atomicfile.SyncDir(filepath.Dir(dst))
}
