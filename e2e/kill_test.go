//go:build integration

package e2e

import (
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// slowProxy forwards to a registry with a delay on every request, so that
// a push takes long enough to be killed in the middle.
func slowProxy(t *testing.T, registry string, delay time.Duration) string {
	return testenv.Front(t, registry, func(http.ResponseWriter, *http.Request) bool {
		time.Sleep(delay)
		return false
	})
}

// TestKilledPushes kills nixery with SIGKILL at random points of a push,
// then runs it again: the rerun completes, reuses what was uploaded, and
// gives the index an uninterrupted push gives. No tag ever names an
// incomplete image.
func TestKilledPushes(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry", "skopeo")
	registry := testenv.StartRegistry(t)
	front := slowProxy(t, registry, 40*time.Millisecond)
	args := func(repo string) []string {
		return []string{"build", "--nixpkgs", standIn(), "--platforms", "linux/amd64,linux/arm64",
			"--image", repo, "--tags", "v1", "--json", "shell", "hello", "largefile"}
	}
	clean := decodeResult(t, run(t, nil, args(registry+"/kill/clean")...))
	total := 0
	for _, m := range clean.Manifests {
		total += len(m.Layers)
	}

	// How long a whole push through the slow proxy takes, so the kills
	// land while it runs.
	start := time.Now()
	decodeResult(t, run(t, nil, args(front+"/kill/timing")...))
	whole := time.Since(start)

	rng := rand.New(rand.NewSource(1))
	const kills = 5
	reusedAny := false
	for i := 0; i < kills; i++ {
		repo := front + "/kill/run" + string(rune('a'+i))
		cmd := exec.Command(nixery, args(repo)...)
		// A killed process cannot remove its blob files: keep them in
		// the test's own directory.
		cmd.Env = append(os.Environ(), "NIX_CONFIG="+testenv.NixConfig, "TMPDIR="+t.TempDir())
		assert.NilError(t, cmd.Start())
		after := time.Duration((0.3 + 0.65*rng.Float64()) * float64(whole))
		time.Sleep(after)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		testenv.CheckTags(t, registry, "kill/run"+string(rune('a'+i)))

		r := run(t, nil, args(repo)...)
		again := decodeResult(t, r)
		assert.Equal(t, again.Digest, clean.Digest, "kill after %v", after)
		// Each platform's SBOM and provenance are listed, even where the
		// kill fell between a referrer and its fallback tag.
		for _, s := range decodeSBOMResult(t, r).SBOMs {
			listed := testenv.Run(t, "skopeo", "inspect", "--tls-verify=false", "--raw",
				"docker://"+registry+"/kill/run"+string(rune('a'+i))+":sha256-"+strings.TrimPrefix(s.Manifest, "sha256:"))
			assert.Check(t, strings.Contains(listed, s.SBOM.Digest) && strings.Contains(listed, s.Provenance.Digest), "kill after %v: %s", after, listed)
		}
		uploaded := 0
		for _, m := range again.Manifests {
			for _, l := range m.Layers {
				if l.Uploaded {
					uploaded++
				}
			}
		}
		if uploaded < total {
			reusedAny = true
		}
		t.Logf("killed after %v; the rerun uploaded %d of %d layers", after, uploaded, total)
		testenv.CheckTags(t, registry, "kill/run"+string(rune('a'+i)))
	}
	assert.Assert(t, reusedAny, "no rerun reused a blob the killed push had uploaded")
}
