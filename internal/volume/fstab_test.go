package volume

import (
	"testing"

	"github.com/imgbase/imgbase/internal/layout"
	"github.com/imgbase/imgbase/internal/lvm"
)

func TestAddToFstabOrder(t *testing.T) {
	e := func(path string) Entry {
		n, err := LVName(path)
		if err != nil {
			t.Fatal(err)
		}
		return Entry{VG: "HostVG", LV: n, Path: path, FSType: "ext4"}
	}
	base := "# comment\n/dev/HostVG/root / ext4 defaults 0 1\nUUID=1 /boot ext4 defaults 0 2\n"
	cases := []struct {
		name, in string
		add      []string
		want     string
	}{
		{"append", base, []string{"/var"}, base + "/dev/HostVG/var /var ext4 defaults,discard 0 2\n"},
		{"child after parent", base, []string{"/var", "/var/log", "/var/log/audit"}, base +
			"/dev/HostVG/var /var ext4 defaults,discard 0 2\n" +
			"/dev/HostVG/var_log /var/log ext4 defaults,discard 0 2\n" +
			"/dev/HostVG/var_log_audit /var/log/audit ext4 defaults,discard 0 2\n"},
		{"parent before children", base, []string{"/var/log/audit", "/var/log", "/var"}, base +
			"/dev/HostVG/var /var ext4 defaults,discard 0 2\n" +
			"/dev/HostVG/var_log /var/log ext4 defaults,discard 0 2\n" +
			"/dev/HostVG/var_log_audit /var/log/audit ext4 defaults,discard 0 2\n"},
		{"sibling prefix is no child", base + "UUID=2 /varx ext4 defaults 0 2\n", []string{"/var"}, base +
			"UUID=2 /varx ext4 defaults 0 2\n/dev/HostVG/var /var ext4 defaults,discard 0 2\n"},
		{"commented child ignored", base + "#UUID=3 /var/log ext4 defaults 0 2\n", []string{"/var"}, base +
			"#UUID=3 /var/log ext4 defaults 0 2\n/dev/HostVG/var /var ext4 defaults,discard 0 2\n"},
		{"no final newline", "/dev/HostVG/root / ext4 defaults 0 1", []string{"/home"},
			"/dev/HostVG/root / ext4 defaults 0 1\n/dev/HostVG/home /home ext4 defaults,discard 0 2\n"},
		{"empty", "", []string{"/home"}, "/dev/HostVG/home /home ext4 defaults,discard 0 2\n"},
		{"already there", base + "/dev/mapper/HostVG-home /home ext4 defaults 0 2\n", []string{"/home"},
			base + "/dev/mapper/HostVG-home /home ext4 defaults 0 2\n"},
		{"other device disabled", base + "LABEL=h /home/ xfs defaults 0 2\n", []string{"/home"}, base +
			"#imgbase-volume# LABEL=h /home/ xfs defaults 0 2\n/dev/HostVG/home /home ext4 defaults,discard 0 2\n"},
	}
	for _, tc := range cases {
		got := []byte(tc.in)
		for _, p := range tc.add {
			got = AddToFstab(got, e(p))
		}
		if string(got) != tc.want {
			t.Errorf("%s:\n%s\nwant:\n%s", tc.name, got, tc.want)
		}
		// Removing what was added gives back the original (disabled lines
		// enabled again), except a line that was there before.
		if tc.name == "already there" {
			continue
		}
		for _, p := range tc.add {
			got = RemoveFromFstab(got, e(p))
		}
		want := tc.in
		if tc.name == "no final newline" {
			want += "\n"
		}
		if string(got) != want {
			t.Errorf("%s, removed again:\n%s\nwant:\n%s", tc.name, got, want)
		}
	}
}

func TestRemoveFromFstabKeepsOthers(t *testing.T) {
	in := "/dev/HostVG/var /var ext4 defaults,discard 0 2\n/dev/OtherVG/var_log /var/log ext4 defaults 0 2\n#imgbase-volume# UUID=9 /srv ext4 defaults 0 2\n"
	got := RemoveFromFstab([]byte(in), Entry{VG: "HostVG", LV: "var_log", Path: "/var/log"})
	if string(got) != in {
		t.Errorf("changed a line of another VG or path:\n%s", got)
	}
	if dev := Mounts([]byte(in), "/var/log"); dev != "/dev/OtherVG/var_log" {
		t.Errorf("Mounts: %q", dev)
	}
	if dev := Mounts([]byte(in), "/srv"); dev != "" {
		t.Errorf("Mounts of a disabled line: %q", dev)
	}
}

func TestEntriesCarryToANewLayer(t *testing.T) {
	tree, err := layout.Build([]lvm.LV{
		{VG: "HostVG", Name: "pool00", Attr: "twi-aotz--", Tags: []string{lvm.TagPool}, VGTags: []string{lvm.TagVG}},
		{VG: "HostVG", Name: "var", Attr: "Vwi-aotz--", Tags: []string{lvm.TagVolume}, VGTags: []string{lvm.TagVG}},
		{VG: "HostVG", Name: "var_log", Attr: "Vwi-aotz--", Tags: []string{lvm.TagVolume}, VGTags: []string{lvm.TagVG}},
		{VG: "HostVG", Name: "data", Attr: "Vwi-aotz--", VGTags: []string{lvm.TagVG}},
	})
	if err != nil {
		t.Fatal(err)
	}
	running := "/dev/HostVG/Base-1-0+1 / ext4 defaults,discard 0 1\n" +
		"/dev/mapper/HostVG-var_log /var/log xfs defaults,discard 0 2\n" +
		"/dev/HostVG/var /var ext4 defaults,discard 0 2\n" +
		"/dev/HostVG/data /srv ext4 defaults 0 2\n"
	es := Entries([]byte(running), tree)
	if len(es) != 2 || es[0].LV != "var_log" || es[0].FSType != "xfs" || es[1].Path != "/var" {
		t.Fatalf("entries %+v", es)
	}
	got := AddAll([]byte("/dev/HostVG/Base-2-0+1 / ext4 defaults,discard 0 1\n"), es)
	want := "/dev/HostVG/Base-2-0+1 / ext4 defaults,discard 0 1\n" +
		"/dev/HostVG/var /var ext4 defaults,discard 0 2\n" +
		"/dev/HostVG/var_log /var/log xfs defaults,discard 0 2\n"
	if string(got) != want {
		t.Errorf("new layer fstab:\n%s\nwant:\n%s", got, want)
	}
}
