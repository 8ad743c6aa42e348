package size

import "testing"

func TestParse(t *testing.T) {
	for in, want := range map[string]uint64{
		"1G": 1 << 30, "1g": 1 << 30, "1GiB": 1 << 30, "1GB": 1 << 30, "512M": 512 << 20,
		"4096": 4096, "4096b": 4096, "1.5G": 3 << 29, "2T": 2 << 40, "10k": 10 << 10,
	} {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "G", "-1G", "0", "abc", "1X", "1e30G"} {
		if got, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %d, want an error", in, got)
		}
	}
}
