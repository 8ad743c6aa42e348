//go:build vm

package vm

import (
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"testing"

	"aead.dev/minisign"
)

// signFile signs the host's copy of a payload file the way `minisign -S`
// does (prehashed) and returns the signature file's text.
func signFile(t *testing.T, priv minisign.PrivateKey, name string) []byte {
	t.Helper()
	f, err := os.Open(filepath.Join(filepath.Dir(os.Getenv(EnvPayload)), "files", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := minisign.NewReader(f)
	if _, err := io.Copy(io.Discard, r); err != nil {
		t.Fatal(err)
	}
	return r.SignWithComments(priv, "file:"+name, "imgbase VM test key")
}

// signedOnly installs a trusted key in the guest and checks that an
// unsigned image and one with a wrong signature are refused with nothing
// created. It returns the path of a good signature for image (a payload
// file) in the guest. The key stays installed.
func signedOnly(t *testing.T, g *Guest, image, name string) string {
	t.Helper()
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := pub.MarshalText()
	g.MustRun("mkdir", "-p", "/etc/imgbased/keys")
	if err := g.WriteFile("/etc/imgbased/keys/test.pub", append(text, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	good, bad := "/root/"+name+".minisig", "/root/wrong.minisig"
	if err := g.WriteFile(good, signFile(t, priv, name), 0o644); err != nil {
		t.Fatal(err)
	}
	// A signature by the trusted key, of another file.
	if err := g.WriteFile(bad, signFile(t, priv, "v1.squashfs"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		why  string
		args []string
	}{
		{"unsigned", []string{"base", "--add", "--size", "1G", image}},
		{"signature of another file", []string{"base", "--add", "--size", "1G", "--signature", bad, image}},
	} {
		before := g.Snapshot()
		r := g.ImgbaseResult(c.args...)
		t.Logf("%s: exit %d: %s", c.why, r.ExitCode, r.Stderr)
		if r.ExitCode == 0 {
			t.Errorf("%s image accepted with a key configured", c.why)
		}
		if after := g.Snapshot(); after != before {
			t.Errorf("refusing the %s image changed the system:\nbefore:\n%s\nafter:\n%s", c.why, before, after)
		}
	}
	return good
}
