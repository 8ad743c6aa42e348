package pull

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// distributionBin is Debian's docker-registry: distribution 2.8, the
// registry server most registries derive from (`make deps` installs it).
const distributionBin = "/usr/bin/docker-registry"

// startDistribution runs the real registry server on 127.0.0.1 with its
// storage in a temporary directory.
func startDistribution(t *testing.T) *url.URL {
	if _, err := os.Stat(distributionBin); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing: make deps installs it", distributionBin)
		}
		t.Skipf("%s is missing: make deps installs docker-registry", distributionBin)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
`, filepath.Join(dir, "storage"), addr)), 0o644)
	cmd := exec.Command(distributionBin, "serve", cfg)
	out, _ := os.Create(filepath.Join(dir, "log"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); out.Close() })
	u := &url.URL{Scheme: "http", Host: addr}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(u.String() + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return u
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "log"))
			t.Fatalf("docker-registry did not answer on %s: %v\n%s", addr, err, log)
		}
	}
}

// TestDistributionV1ThenV2: the v1 and v2 trees pushed to distribution as
// OCI images, pulled and extracted, each equal to its source entry by
// entry; the pull of v2 downloads only its new layer.
func TestDistributionV1ThenV2(t *testing.T) {
	u := startDistribution(t)
	testPullV1ThenV2(t, newFixtureOn(t, httputil.NewSingleHostReverseProxy(u)))
}

// TestDistributionCutDownload: a pull cut mid-layer fails and caches
// only the layer that arrived whole.
func TestDistributionCutDownload(t *testing.T) {
	u := startDistribution(t)
	testCutDownload(t, newFixtureOn(t, httputil.NewSingleHostReverseProxy(u)))
}
