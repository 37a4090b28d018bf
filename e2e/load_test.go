//go:build integration

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// TestConcurrentBuilds pushes 20 image builds at once to one registry;
// every one must complete with a valid image. The log gives the wall
// time and the peak memory of the largest process.
func TestConcurrentBuilds(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry")
	registry := testenv.StartRegistry(t)
	sets := [][]string{{"hello"}, {"busybox"}, {"shell"}, {"hello", "largefile"}, {"shell", "hello"}}
	const builds = 20
	var wg sync.WaitGroup
	errs := make([]string, builds)
	rss := make([]int64, builds)
	start := time.Now()
	for i := 0; i < builds; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := []string{"build", "--nixpkgs", standIn(), "--platforms", "linux/amd64,linux/arm64",
				"--image", fmt.Sprintf("%s/load/image%d", registry, i%7), "--tags", fmt.Sprintf("run%d", i)}
			cmd := exec.Command(nixery, append(args, sets[i%len(sets)]...)...)
			cmd.Env = append(os.Environ(), "NIX_CONFIG="+testenv.NixConfig)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				errs[i] = fmt.Sprintf("%v: %s", err, stderr.String())
			}
			if u, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
				rss[i] = u.Maxrss
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	var peak int64
	for i := range errs {
		assert.Equal(t, errs[i], "", "build %d", i)
		peak = max(peak, rss[i])
	}
	for i := 0; i < 7; i++ {
		testenv.CheckTags(t, registry, fmt.Sprintf("load/image%d", i))
	}
	t.Logf("%d concurrent two-platform builds in %v; largest peak resident memory %d MiB", builds, wall.Round(time.Millisecond), peak/1024)
}
