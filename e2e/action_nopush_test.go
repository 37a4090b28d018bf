//go:build integration

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// TestActionBuildWithoutPush is a pull request from a fork: push false,
// a username whose password secret is empty. The build warns and goes
// on without logging in; the summary says nothing was pushed and
// claims no layer was in the registry. Without image, the image output
// is empty and the summary is headed by the packages.
func TestActionBuildWithoutPush(t *testing.T) {
	testenv.Require(t, "nix")
	host := testenv.StartRegistry(t)
	for _, image := range []string{host + "/e2e/nopush", ""} {
		dir := t.TempDir()
		r := run(t, runnerEnv(dir, "INPUT_PACKAGES=hello", "INPUT_NIXPKGS="+standIn(), "INPUT_PUSH=false", "INPUT_SBOM=false",
			"INPUT_IMAGE="+image, "INPUT_USERNAME=octocat", "INPUT_PASSWORD="), "action")
		assert.Equal(t, r.code, 0, "%s%s", r.stdout, r.stderr)
		ownCommands(t, r.stdout)
		assert.Check(t, is.Contains(r.stdout, "::warning title=nixery::the username input is set but the password input is empty"))

		outputs := runnerOutputs(t, filepath.Join(dir, "output"))
		raw, err := os.ReadFile(filepath.Join(dir, "summary"))
		assert.NilError(t, err)
		summary := string(raw)
		assert.Check(t, is.Contains(summary, "Built and checked, not pushed (push: false): `"+outputs["digest"]+"`"), summary)
		assert.Check(t, !strings.Contains(summary, "already present"), summary)
		if image == "" {
			assert.Check(t, is.Equal(outputs["image"], ""))
			assert.Check(t, strings.HasPrefix(summary, "### hello\n"), summary)
		} else {
			assert.Check(t, is.Equal(outputs["image"], image+"@"+outputs["digest"]))
			assert.Check(t, strings.HasPrefix(summary, "### "+image+"\n"), summary)
		}
	}
}
