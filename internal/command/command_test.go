package command

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

func TestExecCapturesFailure(t *testing.T) {
	_, err := Exec{}.Run(context.Background(), Read("sh", "-c", "echo warn >&2; echo 'the real error' >&2; exit 5"))
	var ce *Error
	if !errors.As(err, &ce) || ce.ExitCode != 5 || !strings.Contains(ce.Stderr, "warn") || ce.Argv[0] != "sh" {
		t.Fatalf("err = %#v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "exited 5: the real error") {
		t.Errorf("message %q", msg)
	}
	if ExitCode(err) != 5 || ExitCode(errors.New("x")) != -1 {
		t.Error("ExitCode")
	}
}

func TestExecOKCodesAndLocale(t *testing.T) {
	c := Read("sh", "-c", "echo $LC_ALL; exit 1")
	c.OKCodes = []int{1}
	out, err := Exec{}.Run(context.Background(), c)
	if err != nil || string(out) != "C\n" {
		t.Fatalf("%q %v", out, err)
	}
	if _, err := (Exec{}).Run(context.Background(), Read("/nonexistent/tool")); ExitCode(err) != -1 || err == nil {
		t.Errorf("missing tool: %v", err)
	}
}

func TestExecStdin(t *testing.T) {
	c := Read("cat")
	c.Stdin = strings.NewReader("in")
	if out, err := (Exec{}).Run(context.Background(), c); err != nil || string(out) != "in" {
		t.Fatalf("%q %v", out, err)
	}
}

type fixed string

func (f fixed) Run(context.Context, Cmd) ([]byte, error) { return []byte(f), nil }

func TestDryPassesReadsPrintsChanges(t *testing.T) {
	var out bytes.Buffer
	d := &Dry{Next: fixed("report"), Out: &out}
	if got, _ := d.Run(context.Background(), Read("lvs")); string(got) != "report" {
		t.Errorf("read got %q", got)
	}
	if got, _ := d.Run(context.Background(), Change("lvcreate", "-n", "a b")); got != nil {
		t.Errorf("change got %q", got)
	}
	if out.String() != "lvcreate -n 'a b'\n" || !IsDry(d) || IsDry(Exec{}) {
		t.Errorf("printed %q", out.String())
	}
}

func TestJoinQuotes(t *testing.T) {
	for argv, want := range map[string]string{
		"lvcreate|--name|Base-1-0+1":   "lvcreate --name Base-1-0+1",
		"sh|-c|echo $HOME":             "sh -c 'echo $HOME'",
		"x||it's":                      `x '' 'it'\''s'`,
		"mount|-o|ro,noload|/dev/a|/b": "mount -o ro,noload /dev/a /b",
	} {
		if got := Join(strings.Split(argv, "|")); got != want {
			t.Errorf("Join(%s) = %s, want %s", argv, got, want)
		}
	}
}

func TestExecMissingToolNamesPackage(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Exec{}.Run(context.Background(), Read("lvs", "--reportformat", "json"))
	if err == nil || ExitCode(err) != -1 {
		t.Fatalf("err = %v", err)
	}
	if msg := err.Error(); msg != "cannot run lvs: it is not installed (install lvm2)" {
		t.Errorf("message %q", msg)
	}
	for tool, pkg := range map[string]string{"xfs_admin": "xfsprogs", "tune2fs": "e2fsprogs", "vgchange": "lvm2", "frob": "the package that provides frob"} {
		if got := packageOf(tool); got != pkg {
			t.Errorf("packageOf(%s) = %q, want %q", tool, got, pkg)
		}
	}
}
