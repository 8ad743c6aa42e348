package manifest

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The text format, one entry per line, in manifest order, after a header:
//
//	#imgbase-manifest 1
//	<path> type=<t> [mode=<oooo>] uid=<n> gid=<n> [size=<n> sha256=<hex>] [rdev=<maj>,<min>]
//	       [target=<esc>] [link=<esc>] time=<sec>.<9 digits> [xattr=<esc name>=<base64>]...
//
// mode is absent for symlinks; size and sha256 only for files; rdev only for
// devices; target only for symlinks. Paths, targets and xattr names keep
// bytes 0x21-0x7e but '\' and '=' as they are and write every other byte as
// \xHH (lowercase), so a line is one line whatever a name holds. Every value
// has exactly one spelling, so Encode(Decode(b)) == b for any b Decode takes.
const header = "#imgbase-manifest 1\n"

// MaxLine bounds one encoded line (a path of 4096 bytes escaped, plus
// xattrs): anything longer is refused rather than read into memory.
const MaxLine = 1 << 20

func plain(c byte) bool { return c > 0x20 && c < 0x7f && c != '\\' && c != '=' }

// Escape spells s for the format: printable bytes as they are, others \xHH.
func Escape(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !plain(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 3*n)
	const hexd = "0123456789abcdef"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if plain(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('\\')
		b.WriteByte('x')
		b.WriteByte(hexd[c>>4])
		b.WriteByte(hexd[c&15])
	}
	return b.String()
}

func unescape(s string) (string, error) {
	if strings.IndexByte(s, '\\') < 0 {
		for i := 0; i < len(s); i++ {
			if !plain(s[i]) {
				return "", fmt.Errorf("unescaped byte %#x", s[i])
			}
		}
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if plain(c) {
			b.WriteByte(c)
			continue
		}
		if c != '\\' || i+4 > len(s) || s[i+1] != 'x' {
			return "", fmt.Errorf("bad escape at byte %d", i)
		}
		v, ok := unhex(s[i+2 : i+4])
		if !ok || plain(v) {
			return "", fmt.Errorf("bad escape at byte %d", i)
		}
		b.WriteByte(v)
		i += 3
	}
	return b.String(), nil
}

func unhex(s string) (byte, bool) {
	var v byte
	for i := 0; i < 2; i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | (c - '0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | (c - 'a' + 10)
		default:
			return 0, false
		}
	}
	return v, true
}

func b64(v []byte) string { return base64.StdEncoding.EncodeToString(v) }

func rdevString(r uint64) string {
	return strconv.FormatUint(uint64(unix.Major(r)), 10) + "," + strconv.FormatUint(uint64(unix.Minor(r)), 10)
}

// Encode writes m in the text format.
func Encode(w io.Writer, m *Manifest) error {
	if m.unhashed {
		return errors.New("cannot write a manifest built without hashes")
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteString(header)
	var line []byte
	for i := range m.Entries {
		line = appendEntry(line[:0], &m.Entries[i])
		if _, err := bw.Write(line); err != nil {
			return fmt.Errorf("cannot write manifest: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("cannot write manifest: %w", err)
	}
	return nil
}

func appendEntry(b []byte, e *Entry) []byte {
	b = append(b, Escape(e.Path)...)
	b = append(b, " type="...)
	b = append(b, e.Type.String()...)
	if e.Type != Symlink {
		b = append(b, " mode="...)
		b = append(b, fmt.Sprintf("%04o", e.Mode)...)
	}
	b = append(b, " uid="...)
	b = strconv.AppendUint(b, uint64(e.UID), 10)
	b = append(b, " gid="...)
	b = strconv.AppendUint(b, uint64(e.GID), 10)
	switch e.Type {
	case File:
		b = append(b, " size="...)
		b = strconv.AppendInt(b, e.Size, 10)
		b = append(b, " sha256="...)
		b = hex.AppendEncode(b, e.SHA256[:])
	case Char, Block:
		b = append(b, " rdev="...)
		b = append(b, rdevString(e.Rdev)...)
	case Symlink:
		b = append(b, " target="...)
		b = append(b, Escape(e.Target)...)
	}
	if e.Link != "" {
		b = append(b, " link="...)
		b = append(b, Escape(e.Link)...)
	}
	b = append(b, " time="...)
	b = strconv.AppendInt(b, e.Sec, 10)
	b = append(b, fmt.Sprintf(".%09d", e.Nsec)...)
	for _, x := range e.Xattrs {
		b = append(b, " xattr="...)
		b = append(b, Escape(x.Name)...)
		b = append(b, '=')
		b = base64.StdEncoding.AppendEncode(b, x.Value)
	}
	return append(b, '\n')
}

// Decode reads a manifest in the text format and validates it strictly:
// canonical spelling, manifest order without duplicates, the root first and
// a directory, every parent an earlier directory, and every hard link naming
// an earlier, non-directory group head with the same metadata.
func Decode(r io.Reader) (*Manifest, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	m := &Manifest{}
	dirs := map[string]bool{}
	idx := map[string]int{}
	for n := 0; ; n++ {
		line, err := readLine(br)
		if errors.Is(err, io.EOF) && line == nil {
			if n == 0 {
				return nil, errors.New("cannot decode manifest: empty")
			}
			if len(m.Entries) == 0 {
				return nil, errors.New("cannot decode manifest: no root entry")
			}
			return m, nil
		}
		if err != nil {
			return nil, fmt.Errorf("cannot decode manifest: line %d: %w", n+1, err)
		}
		if n == 0 {
			if string(line) != header {
				return nil, errors.New("cannot decode manifest: not an imgbase manifest (bad header)")
			}
			continue
		}
		e, err := parseEntry(line[:len(line)-1])
		if err != nil {
			return nil, fmt.Errorf("cannot decode manifest: line %d: %w", n+1, err)
		}
		if err := place(m, e, dirs, idx); err != nil {
			return nil, fmt.Errorf("cannot decode manifest: line %d: %w", n+1, err)
		}
	}
}

func readLine(br *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		frag, err := br.ReadSlice('\n')
		buf = append(buf, frag...)
		if len(buf) > MaxLine {
			return nil, errors.New("line too long")
		}
		if err == nil {
			return buf, nil
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) {
			if len(buf) == 0 {
				return nil, io.EOF
			}
			return nil, errors.New("last line has no newline")
		}
		return nil, err
	}
}

// place checks e against the entries before it and appends it.
func place(m *Manifest, e Entry, dirs map[string]bool, idx map[string]int) error {
	if len(m.Entries) == 0 {
		if e.Path != "." || e.Type != Dir {
			return errors.New("the first entry is not the root directory \".\"")
		}
	} else {
		prev := m.Entries[len(m.Entries)-1].Path
		if !Less(prev, e.Path) {
			return fmt.Errorf("%s is out of order or repeated", Escape(e.Path))
		}
		if !dirs[Parent(e.Path)] {
			return fmt.Errorf("%s: parent is not an earlier directory", Escape(e.Path))
		}
	}
	if e.Link != "" {
		if e.Type == Dir {
			return fmt.Errorf("%s: a directory cannot be a hard link", Escape(e.Path))
		}
		h, ok := idx[e.Link]
		if !ok {
			return fmt.Errorf("%s: link to %s, which is not an earlier entry", Escape(e.Path), Escape(e.Link))
		}
		head := &m.Entries[h]
		if head.Link != "" || !SameMeta(head, &e) || !SameTime(head, &e) {
			return fmt.Errorf("%s: link to %s, which is not a group head with the same metadata", Escape(e.Path), Escape(e.Link))
		}
	}
	if e.Type == Dir {
		dirs[e.Path] = true
	}
	idx[e.Path] = len(m.Entries)
	m.Entries = append(m.Entries, e)
	return nil
}

func validPath(p string) bool {
	if p == "." {
		return true
	}
	if p == "" || strings.IndexByte(p, 0) >= 0 {
		return false
	}
	for c := range strings.SplitSeq(p, "/") {
		if c == "" || c == "." || c == ".." {
			return false
		}
	}
	return true
}

// fields hands out the space-separated fields of a line, each expected
// under a given key, in order.
type fields struct {
	f []string
}

func (fs *fields) take(key string) (string, bool) {
	if len(fs.f) == 0 || len(fs.f[0]) <= len(key) || fs.f[0][len(key)] != '=' || !strings.HasPrefix(fs.f[0], key) {
		return "", false
	}
	v := fs.f[0][len(key)+1:]
	fs.f = fs.f[1:]
	return v, true
}

func (fs *fields) need(key string) (string, error) {
	v, ok := fs.take(key)
	if !ok {
		return "", fmt.Errorf("missing or misplaced %s=", key)
	}
	return v, nil
}

// parseUint takes only the canonical decimal spelling.
func parseUint(s string, bits int) (uint64, error) {
	if s == "" || (len(s) > 1 && s[0] == '0') || s[0] == '+' {
		return 0, fmt.Errorf("bad number %q", s)
	}
	return strconv.ParseUint(s, 10, bits)
}

func parseEntry(line []byte) (Entry, error) {
	var e Entry
	f := strings.Split(string(line), " ")
	p, err := unescape(f[0])
	if err != nil {
		return e, fmt.Errorf("path: %w", err)
	}
	if !validPath(p) {
		return e, fmt.Errorf("invalid path %s", f[0])
	}
	e.Path = p
	fs := &fields{f: f[1:]}
	t, err := fs.need("type")
	if err != nil {
		return e, err
	}
	var ok bool
	if e.Type, ok = parseType(t); !ok {
		return e, fmt.Errorf("unknown type %q", t)
	}
	if e.Type != Symlink {
		v, err := fs.need("mode")
		if err != nil {
			return e, err
		}
		if len(v) != 4 || v[0] < '0' || v[0] > '7' {
			return e, fmt.Errorf("bad mode %q", v)
		}
		mode, err := strconv.ParseUint(v, 8, 32)
		if err != nil {
			return e, fmt.Errorf("bad mode %q", v)
		}
		e.Mode = uint32(mode)
	}
	for _, k := range []struct {
		key string
		dst *uint32
	}{{"uid", &e.UID}, {"gid", &e.GID}} {
		v, err := fs.need(k.key)
		if err != nil {
			return e, err
		}
		n, err := parseUint(v, 32)
		if err != nil {
			return e, fmt.Errorf("%s: %w", k.key, err)
		}
		*k.dst = uint32(n)
	}
	switch e.Type {
	case File:
		v, err := fs.need("size")
		if err != nil {
			return e, err
		}
		n, err := parseUint(v, 63)
		if err != nil {
			return e, fmt.Errorf("size: %w", err)
		}
		e.Size = int64(n)
		v, err = fs.need("sha256")
		if err != nil {
			return e, err
		}
		if len(v) != 64 || strings.ToLower(v) != v {
			return e, fmt.Errorf("bad sha256 %q", v)
		}
		if _, err := hex.Decode(e.SHA256[:], []byte(v)); err != nil {
			return e, fmt.Errorf("bad sha256 %q", v)
		}
	case Char, Block:
		v, err := fs.need("rdev")
		if err != nil {
			return e, err
		}
		maj, min, found := strings.Cut(v, ",")
		a, err1 := parseUint(maj, 32)
		b, err2 := parseUint(min, 32)
		if !found || err1 != nil || err2 != nil {
			return e, fmt.Errorf("bad rdev %q", v)
		}
		e.Rdev = unix.Mkdev(uint32(a), uint32(b))
		if rdevString(e.Rdev) != v {
			return e, fmt.Errorf("bad rdev %q", v)
		}
	case Symlink:
		v, err := fs.need("target")
		if err != nil {
			return e, err
		}
		if e.Target, err = unescape(v); err != nil || e.Target == "" || strings.IndexByte(e.Target, 0) >= 0 {
			return e, fmt.Errorf("bad target %q", v)
		}
	}
	if v, ok := fs.take("link"); ok {
		if e.Link, err = unescape(v); err != nil || !validPath(e.Link) || e.Link == "." {
			return e, fmt.Errorf("bad link %q", v)
		}
	}
	v, err := fs.need("time")
	if err != nil {
		return e, err
	}
	if err := parseTime(v, &e); err != nil {
		return e, err
	}
	for len(fs.f) > 0 {
		v, err := fs.need("xattr")
		if err != nil {
			return e, err
		}
		name, val, found := strings.Cut(v, "=")
		x := Xattr{}
		if x.Name, err = unescape(name); err != nil || !found || x.Name == "" || strings.IndexByte(x.Name, 0) >= 0 {
			return e, fmt.Errorf("bad xattr %q", v)
		}
		if x.Value, err = base64.StdEncoding.Strict().DecodeString(val); err != nil {
			return e, fmt.Errorf("bad xattr %q", v)
		}
		if n := len(e.Xattrs); n > 0 && e.Xattrs[n-1].Name >= x.Name {
			return e, fmt.Errorf("xattr %s out of order or repeated", Escape(x.Name))
		}
		e.Xattrs = append(e.Xattrs, x)
	}
	return e, nil
}

func parseTime(v string, e *Entry) error {
	sec, nsec, found := strings.Cut(v, ".")
	neg := strings.HasPrefix(sec, "-")
	digits := strings.TrimPrefix(sec, "-")
	u, err := parseUint(digits, 63)
	if !found || err != nil || (neg && u == 0) || len(nsec) != 9 {
		return fmt.Errorf("bad time %q", v)
	}
	ns, err := strconv.ParseUint(nsec, 10, 32)
	if err != nil || nsec[0] == '+' {
		return fmt.Errorf("bad time %q", v)
	}
	e.Sec, e.Nsec = int64(u), int64(ns)
	if neg {
		e.Sec = -e.Sec
	}
	return nil
}
