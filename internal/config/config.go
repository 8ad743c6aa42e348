// Package config reads imgbase's settings: /etc/imgbased.conf, then every
// /etc/imgbased.conf.d/*.conf in lexical order, each later file overriding
// the keys it sets. The files are INI as the original imgbased (Python's
// ConfigParser) read them, so an existing oVirt Node configuration keeps
// working:
//
//	# comment          ; comment too
//	[update]
//	images_to_keep = 3
//
// Sections are case-sensitive, keys are not; "key: value" is accepted
// like "key = value"; a '#' or ';' after whitespace starts a comment. A
// key outside a section, a line that is neither, or a key or section
// repeated within one file is an error naming the file and line.
package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// DefaultImagesToKeep is how many bases "[update] images_to_keep" keeps
// when no file sets it, as in imgbased.
const DefaultImagesToKeep = 2

// Error is a problem in a configuration file, at a line of it.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	return fmt.Sprintf("cannot use %s line %d: %s", e.File, e.Line, e.Msg)
}

// Config is the merged content of the files that were read.
type Config struct {
	files  []string
	values map[string]map[string]setting // section → lower-case key → setting
}

// setting is one value and where it was set, so that a bad value can be
// reported at its line.
type setting struct {
	value string
	file  string
	line  int
}

// DefaultPaths returns the files imgbase reads under root ("/" on a
// host): etc/imgbased.conf and etc/imgbased.conf.d/*.conf in lexical
// order, only those that exist.
func DefaultPaths(root string) ([]string, error) {
	var paths []string
	main := filepath.Join(root, "etc", "imgbased.conf")
	if _, err := os.Stat(main); err == nil {
		paths = append(paths, main)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("cannot read %s: %w", main, err)
	}
	dir := filepath.Join(root, "etc", "imgbased.conf.d")
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("cannot read %s: %w", dir, err)
	}
	for _, e := range entries { // ReadDir sorts by name
		if strings.HasSuffix(e.Name(), ".conf") && !e.IsDir() {
			paths = append(paths, filepath.Join(dir, e.Name()))
		}
	}
	return paths, nil
}

// LoadDefault reads the default files under root; none existing is an
// empty configuration, not an error.
func LoadDefault(root string) (*Config, error) {
	paths, err := DefaultPaths(root)
	if err != nil {
		return nil, err
	}
	return Load(paths...)
}

// Load reads the files in order, later ones overriding earlier ones. Every
// file must exist.
func Load(paths ...string) (*Config, error) {
	c := &Config{values: map[string]map[string]setting{}}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("cannot read configuration: %w", err)
		}
		if err := c.parse(p, data); err != nil {
			return nil, err
		}
		c.files = append(c.files, p)
	}
	return c, nil
}

// Files returns the files that were read, in order.
func (c *Config) Files() []string { return slices.Clone(c.files) }

func (c *Config) parse(file string, data []byte) error {
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	section := ""
	seen := map[string]bool{} // "[section" and "[section]key" seen in this file
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		fail := func(format string, a ...any) error {
			return &Error{File: file, Line: n, Msg: fmt.Sprintf(format, a...)}
		}
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			end := strings.IndexByte(line, ']')
			if end < 0 {
				return fail("section header %q has no closing ']'", line)
			}
			if rest := stripComment(line[end+1:]); rest != "" {
				return fail("unexpected %q after section header", rest)
			}
			section = strings.TrimSpace(line[1:end])
			if section == "" {
				return fail("empty section name")
			}
			if seen["["+section] {
				return fail("section [%s] appears twice in this file", section)
			}
			seen["["+section] = true
			continue
		}
		sep := strings.IndexAny(line, "=:")
		if sep < 0 {
			return fail("expected \"key = value\" or \"[section]\", got %q", line)
		}
		key := strings.ToLower(strings.TrimSpace(line[:sep]))
		if key == "" {
			return fail("missing key before %q", line[sep:sep+1])
		}
		if section == "" {
			return fail("key %q is outside any [section]", key)
		}
		if seen["["+section+"]"+key] {
			return fail("key %q appears twice in [%s]", key, section)
		}
		seen["["+section+"]"+key] = true
		if c.values[section] == nil {
			c.values[section] = map[string]setting{}
		}
		c.values[section][key] = setting{value: stripComment(line[sep+1:]), file: file, line: n}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("cannot read %s: %w", file, err)
	}
	return nil
}

// stripComment removes a trailing comment, one that starts with '#' or
// ';' at the beginning or after whitespace, and surrounding whitespace.
func stripComment(s string) string {
	for i := 0; i < len(s); i++ {
		if (s[i] == '#' || s[i] == ';') && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t') {
			s = s[:i]
			break
		}
	}
	return strings.TrimSpace(s)
}

// Get returns the value of key in section and whether any file set it.
func (c *Config) Get(section, key string) (string, bool) {
	s, ok := c.values[section][strings.ToLower(key)]
	return s.value, ok
}

// Int returns key in section as an integer of at least min, or def when
// no file sets it. A bad value is an *Error at the line that set it.
func (c *Config) Int(section, key string, def, min int) (int, error) {
	s, ok := c.values[section][strings.ToLower(key)]
	if !ok {
		return def, nil
	}
	v, err := strconv.Atoi(s.value)
	if err != nil || v < min {
		return 0, &Error{File: s.file, Line: s.line, Msg: fmt.Sprintf(
			"[%s] %s = %q: want a whole number of at least %d", section, key, s.value, min)}
	}
	return v, nil
}

// ImagesToKeep is "[update] images_to_keep": how many bases to keep when
// old ones are removed after an update (at least 1, default 2).
func (c *Config) ImagesToKeep() (int, error) {
	return c.Int("update", "images_to_keep", DefaultImagesToKeep, 1)
}
