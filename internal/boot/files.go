package boot

import (
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

func (Disk) CopyFile(dst, src string) error {
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
