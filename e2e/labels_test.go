//go:build integration

package e2e

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

type imageConfig struct {
	Created string `json:"created"`
	Config  struct {
		Labels map[string]string `json:"Labels"`
	} `json:"config"`
}

func inspectConfig(t *testing.T, ref string) imageConfig {
	t.Helper()
	var c imageConfig
	raw := testenv.Run(t, "skopeo", "inspect", "--override-arch", "amd64", "--config", ref)
	assert.NilError(t, json.Unmarshal([]byte(raw), &c), raw)
	return c
}

// In a workflow, the image's config carries the labels registries read
// (source, revision, created, title, and the app's description and
// licence), and, without SOURCE_DATE_EPOCH, the checked-out commit's
// time as its creation time; --labels override the defaults; a runner
// whose repository is a directory (act) gives no source URL.
func TestLabelsAndCommitTime(t *testing.T) {
	testenv.Require(t, "nix", "git", "skopeo")
	dir := appCheckout(t)
	rev := strings.TrimSpace(mustRunIn(t, dir, "git", "rev-parse", "HEAD"))
	secs, err := strconv.ParseInt(strings.TrimSpace(mustRunIn(t, dir, "git", "show", "-s", "--format=%ct", "HEAD")), 10, 64)
	assert.NilError(t, err)
	commitTime := time.Unix(secs, 0).UTC().Format(time.RFC3339)
	workflow := []string{"GITHUB_ACTIONS=true", "GITHUB_WORKSPACE=" + dir, "GITHUB_SHA=" + rev,
		"GITHUB_SERVER_URL=https://github.com", "GITHUB_REPOSITORY=team/greet", "SOURCE_DATE_EPOCH="}
	out := filepath.Join(t.TempDir(), "layout")
	r := runIn(t, dir, workflow, "build", "--nixpkgs", standIn(), "--output", "oci:"+out, "--tags", "v1", "--json", ".#greet")
	assert.Equal(t, r.code, 0, r.stderr)
	var res struct{ Created string }
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &res))
	assert.Equal(t, res.Created, commitTime)

	c := inspectConfig(t, "oci:"+out+":v1")
	assert.Equal(t, c.Created, commitTime)
	assert.DeepEqual(t, c.Config.Labels, map[string]string{
		"org.opencontainers.image.source":      "https://github.com/team/greet",
		"org.opencontainers.image.revision":    rev,
		"org.opencontainers.image.created":     commitTime,
		"org.opencontainers.image.title":       ".#greet",
		"org.opencontainers.image.description": "Says hello from inside an image",
	})

	// --labels win; act's repository (a directory) gives no source.
	act := append(workflow[:4:4], "GITHUB_REPOSITORY=/tmp/clone/greet", "SOURCE_DATE_EPOCH=")
	r = runIn(t, dir, act, "build", "--nixpkgs", standIn(), "--output", "oci:"+out, "--tags", "v2",
		"--labels", "org.opencontainers.image.description=the team's greeter", ".#greet")
	assert.Equal(t, r.code, 0, r.stderr)
	c = inspectConfig(t, "oci:"+out+":v2")
	assert.Check(t, is.Equal(c.Config.Labels["org.opencontainers.image.description"], "the team's greeter"))
	_, hasSource := c.Config.Labels["org.opencontainers.image.source"]
	assert.Check(t, !hasSource, "a source URL made of a directory: %v", c.Config.Labels)

	// Outside a workflow, without SOURCE_DATE_EPOCH: the epoch, as before.
	r = runIn(t, dir, []string{"GITHUB_ACTIONS=", "SOURCE_DATE_EPOCH="}, "build", "--nixpkgs", standIn(), "--output", "oci:"+out, "--tags", "v3", ".#greet")
	assert.Equal(t, r.code, 0, r.stderr)
	assert.Equal(t, inspectConfig(t, "oci:"+out+":v3").Created, "1970-01-01T00:00:00Z")
}
