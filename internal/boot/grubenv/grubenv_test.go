package grubenv

import (
	"bytes"
	"strings"
	"testing"
)

func TestRoundTripExactSize(t *testing.T) {
	e := New()
	e.Set("saved_entry", "Base-1-0+1")
	e.Set("next_entry", "")
	e.Set("odd", "a\\b\nc")
	data, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != Size {
		t.Fatalf("size %d, want %d", len(data), Size)
	}
	if !bytes.HasPrefix(data, []byte(Header+"saved_entry=Base-1-0+1\nnext_entry=\nodd=a\\\\b\\\nc\n#")) {
		t.Fatalf("unexpected layout:\n%q", data[:80])
	}
	got, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(e) {
		t.Fatalf("round trip: got %v %v", got.keys, got.vals)
	}
}

// grub-editenv's own output for "create" then "set saved_entry=0".
const editenvOutput = "# GRUB Environment Block\nsaved_entry=0\n"

func TestParseGrubEditenv(t *testing.T) {
	data := editenvOutput + strings.Repeat("#", Size-len(editenvOutput))
	e, err := Parse([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if e.Get("saved_entry") != "0" || len(e.Keys()) != 1 {
		t.Fatalf("got %v", e.vals)
	}
}

func TestTooLarge(t *testing.T) {
	e := New()
	e.Set("k", strings.Repeat("x", Size))
	if _, err := e.Marshal(); err != ErrTooLarge {
		t.Fatalf("err = %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{"", "# GRUB Environment\n", Header + "novalue\n", Header + "k=unterminated", Header + "=v\n"} {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("Parse(%q) succeeded", in)
		}
	}
}

func TestUnsetKeepsOrder(t *testing.T) {
	e := New()
	e.Set("a", "1")
	e.Set("b", "2")
	e.Set("c", "3")
	e.Unset("b")
	e.Set("a", "4")
	if got := strings.Join(e.Keys(), ","); got != "a,c" || e.Get("a") != "4" {
		t.Fatalf("keys %s a=%s", got, e.Get("a"))
	}
}

func FuzzParseGrubenv(f *testing.F) {
	f.Add([]byte(editenvOutput + strings.Repeat("#", Size-len(editenvOutput))))
	f.Add([]byte(Header + "a=b\\\nc\nx=\\\\\n###"))
	f.Add([]byte(Header + "#comment\n\nk=v\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Parse(data)
		if err != nil {
			return
		}
		out, err := e.Marshal()
		if err == ErrTooLarge {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != Size {
			t.Fatalf("marshal gave %d bytes", len(out))
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("cannot reparse own output: %v\n%q", err, out)
		}
		if !again.Equal(e) {
			t.Fatalf("round trip changed variables")
		}
	})
}
