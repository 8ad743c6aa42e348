package progress

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// fakeClock advances only when told.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestJSONLines(t *testing.T) {
	var out bytes.Buffer
	c := &fakeClock{t: time.Unix(1000, 0)}
	r := newAt(&out, JSON, "writing Base-2-0", 400<<20, c.now)
	r.Update(1 << 20) // too soon after the start: nothing printed
	c.advance(2 * time.Second)
	r.Update(100 << 20)
	c.advance(500 * time.Millisecond)
	r.Update(150 << 20) // within JSONEvery of the last line
	c.advance(2 * time.Second)
	r.Update(400 << 20)
	r.Finish()
	r.Finish()
	r.Update(1) // after Finish: ignored

	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 lines, got %q", lines)
	}
	type ev struct {
		Event       string
		Stage       string
		Done, Total int64
		Rate        int64
		Final       bool
	}
	var got []ev
	for _, l := range lines {
		var e ev
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		got = append(got, e)
	}
	want := []ev{
		{"progress", "writing Base-2-0", 100 << 20, 400 << 20, 50 << 20, false},
		{"progress", "writing Base-2-0", 400 << 20, 400 << 20, 400 << 20 * 10 / 45, false},
		{"progress", "writing Base-2-0", 400 << 20, 400 << 20, 400 << 20 * 10 / 45, true},
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestPlainLines(t *testing.T) {
	var out bytes.Buffer
	c := &fakeClock{t: time.Unix(0, 0)}
	r := newAt(&out, Plain, "sha256", 1<<30, c.now)
	for range 10 {
		c.advance(time.Second)
		r.Update(r.done + 64<<20)
	}
	r.Finish()
	want := "sha256: 320.0 MiB/1.0 GiB 31% 64.0 MiB/s ETA 0:11\n" +
		"sha256: 640.0 MiB/1.0 GiB 62% 64.0 MiB/s ETA 0:06\n" +
		"sha256: 640.0 MiB/1.0 GiB 62% 64.0 MiB/s ETA 0:06\n"
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}
}

func TestBar(t *testing.T) {
	var out bytes.Buffer
	c := &fakeClock{t: time.Unix(0, 0)}
	r := newAt(&out, Bar, "writing", 100<<20, c.now)
	c.advance(time.Second)
	r.Update(50 << 20)
	c.advance(time.Second)
	r.Update(100 << 20)
	r.Finish()
	want := "\r\x1b[Kwriting [==========>         ] 50.0 MiB/100.0 MiB 50% 50.0 MiB/s ETA 0:01" +
		"\r\x1b[Kwriting [====================] 100.0 MiB/100.0 MiB 100% 50.0 MiB/s in 0:02" +
		"\r\x1b[Kwriting [====================] 100.0 MiB/100.0 MiB 100% 50.0 MiB/s in 0:02\n"
	if out.String() != want {
		t.Fatalf("got  %q\nwant %q", out.String(), want)
	}
}

func TestQuiet(t *testing.T) {
	var out bytes.Buffer
	r := New(&out, Quiet, "x", 10)
	r.Update(5)
	r.Finish()
	if out.Len() != 0 {
		t.Fatalf("quiet printed %q", out.String())
	}
}

func TestModeFor(t *testing.T) {
	if ModeFor(&bytes.Buffer{}, true) != JSON || ModeFor(&bytes.Buffer{}, false) != Plain {
		t.Fatal("wrong mode for a buffer")
	}
	f, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if ModeFor(f, false) != Plain {
		t.Fatal("a regular file is not a terminal")
	}
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		defer tty.Close()
		if ModeFor(tty, false) != Bar {
			t.Fatal("/dev/tty is a terminal")
		}
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 3 << 29: "1.5 GiB", 5 << 40: "5.0 TiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}
