//go:build integration

package e2e

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// TestInterrupted sends SIGINT and SIGTERM to running builds, as Ctrl-C
// and a CI runner's cancel do: nixery stops, says so on one line, exits
// 130 or 143 as shells report a process killed by the signal, and leaves
// no tag behind.
func TestInterrupted(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry", "skopeo")
	registry := testenv.StartRegistry(t)
	// Slow enough that the build is still pushing when the signal comes.
	front := slowProxy(t, registry, 500*time.Millisecond)
	for _, tc := range []struct {
		sig  syscall.Signal
		name string
		code int
	}{
		{syscall.SIGINT, "SIGINT", 130},
		{syscall.SIGTERM, "SIGTERM", 143},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := "signal/" + strings.ToLower(tc.name)
			cmd := exec.Command(nixery, "build", "--nixpkgs", standIn(), "--image", front+"/"+repo, "--tags", "v1", "hello")
			cmd.Env = append(os.Environ(), "NIX_CONFIG="+testenv.NixConfig, "TMPDIR="+t.TempDir())
			pipe, err := cmd.StderrPipe()
			assert.NilError(t, err)
			assert.NilError(t, cmd.Start())

			// Wait until Nix is at work, then interrupt.
			var stderr bytes.Buffer
			lines := bufio.NewScanner(pipe)
			started := false
			for !started && lines.Scan() {
				stderr.WriteString(lines.Text() + "\n")
				started = strings.Contains(lines.Text(), "[linux/amd64] building ")
			}
			assert.Assert(t, started, "the build never started:\n%s", stderr.String())
			assert.NilError(t, cmd.Process.Signal(tc.sig))
			sent := time.Now()
			for lines.Scan() {
				stderr.WriteString(lines.Text() + "\n")
			}
			err = cmd.Wait()
			took := time.Since(sent)

			var ee *exec.ExitError
			assert.Assert(t, errAs(err, &ee), "exit: %v\n%s", err, stderr.String())
			assert.Equal(t, ee.ExitCode(), tc.code, stderr.String())
			assert.Check(t, is.Contains(stderr.String(), "nixery build: interrupted by "+tc.name+"\n"))
			assert.Check(t, took < 10*time.Second, "stopping took %s", took)
			assertNoTags(t, registry+"/"+repo)
		})
	}
}

func errAs(err error, target **exec.ExitError) bool {
	ee, ok := err.(*exec.ExitError)
	*target = ee
	return ok
}
