// Package grubenv reads and writes GRUB's environment block (grubenv).
//
// The block is a 1024-byte file: the line "# GRUB Environment Block", then
// "key=value" lines, then '#' padding up to exactly 1024 bytes. GRUB's
// save_env rewrites the file in place through its block list, so the file
// must stay one regular file of that exact size; a rename from userspace is
// fine because GRUB looks the block list up again on every boot.
//
// Values are escaped the way GRUB's envblk does it: a backslash or newline in
// a value is written with a backslash before it.
package grubenv

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Size is the size of a grubenv file in bytes.
const Size = 1024

// Header is the first line of every environment block.
const Header = "# GRUB Environment Block\n"

// ErrTooLarge is returned when the variables do not fit in Size bytes.
var ErrTooLarge = errors.New("grubenv: variables do not fit in 1024 bytes")

// Env is an ordered set of variables; the order is kept so a rewrite changes
// as little as possible.
type Env struct {
	keys []string
	vals map[string]string
}

// New returns an empty environment.
func New() *Env { return &Env{vals: map[string]string{}} }

// Get returns the value of key, "" when unset.
func (e *Env) Get(key string) string { return e.vals[key] }

// Lookup returns the value of key and whether it is set.
func (e *Env) Lookup(key string) (string, bool) {
	v, ok := e.vals[key]
	return v, ok
}

// Set sets key to value. It panics on a key GRUB could not read back,
// since keys are always constants of the caller.
func (e *Env) Set(key, value string) {
	if err := checkKey(key); err != nil {
		panic(err)
	}
	if _, ok := e.vals[key]; !ok {
		e.keys = append(e.keys, key)
	}
	e.vals[key] = value
}

// Unset removes key.
func (e *Env) Unset(key string) {
	if _, ok := e.vals[key]; !ok {
		return
	}
	delete(e.vals, key)
	for i, k := range e.keys {
		if k == key {
			e.keys = append(e.keys[:i], e.keys[i+1:]...)
			break
		}
	}
}

// Keys returns the keys in file order.
func (e *Env) Keys() []string { return append([]string(nil), e.keys...) }

// Clone returns an independent copy.
func (e *Env) Clone() *Env {
	c := New()
	for _, k := range e.keys {
		c.Set(k, e.vals[k])
	}
	return c
}

// Equal reports whether two environments hold the same variables in the
// same order.
func (e *Env) Equal(o *Env) bool {
	if len(e.keys) != len(o.keys) {
		return false
	}
	for i, k := range e.keys {
		if o.keys[i] != k || o.vals[k] != e.vals[k] {
			return false
		}
	}
	return true
}

func checkKey(key string) error {
	if key == "" || strings.ContainsAny(key, "=\n\\") || key[0] == '#' {
		return fmt.Errorf("grubenv: invalid key %q", key)
	}
	return nil
}

// Parse reads an environment block. Like GRUB it accepts any size that
// starts with the header; lines starting with '#' are padding or comments.
func Parse(data []byte) (*Env, error) {
	if !bytes.HasPrefix(data, []byte(Header)) {
		return nil, errors.New("cannot parse grubenv: missing header")
	}
	e := New()
	rest := data[len(Header):]
	for len(rest) > 0 {
		if rest[0] == '#' || rest[0] == '\n' {
			i := bytes.IndexByte(rest, '\n')
			if i < 0 {
				break
			}
			rest = rest[i+1:]
			continue
		}
		eq := bytes.IndexByte(rest, '=')
		nl := bytes.IndexByte(rest, '\n')
		if eq < 0 || (nl >= 0 && nl < eq) {
			return nil, fmt.Errorf("cannot parse grubenv: line without '=': %q", firstLine(rest))
		}
		key := string(rest[:eq])
		if err := checkKey(key); err != nil {
			return nil, fmt.Errorf("cannot parse grubenv: %w", err)
		}
		var val []byte
		i := eq + 1
		for ; i < len(rest) && rest[i] != '\n'; i++ {
			if rest[i] == '\\' && i+1 < len(rest) {
				i++
			}
			val = append(val, rest[i])
		}
		if i >= len(rest) {
			return nil, fmt.Errorf("cannot parse grubenv: unterminated value for %s", key)
		}
		if _, dup := e.vals[key]; dup {
			// GRUB takes the first one; keep that and drop the rest.
		} else {
			e.Set(key, string(val))
		}
		rest = rest[i+1:]
	}
	return e, nil
}

func firstLine(b []byte) []byte {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	if len(b) > 40 {
		b = b[:40]
	}
	return b
}

// Marshal renders the block at exactly Size bytes.
func (e *Env) Marshal() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(Header)
	for _, k := range e.keys {
		b.WriteString(k)
		b.WriteByte('=')
		for _, c := range []byte(e.vals[k]) {
			if c == '\\' || c == '\n' {
				b.WriteByte('\\')
			}
			b.WriteByte(c)
		}
		b.WriteByte('\n')
	}
	if b.Len() > Size {
		return nil, ErrTooLarge
	}
	b.Write(bytes.Repeat([]byte{'#'}, Size-b.Len()))
	return b.Bytes(), nil
}

// Read reads the grubenv file at path. A missing file is an empty
// environment, as for GRUB's load_env.
func Read(path string) (*Env, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return New(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	e, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	return e, nil
}
