//go:build integration

package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// metadata-action's tags output, as it is, pushes one build to two
// registries: one open, one behind htpasswd whose login is in the docker
// config (what docker/login-action writes). --username/--password would
// go to the first registry only: here they are wrong for the second, and
// the push works. Every tag names the same index, read back by skopeo;
// each repository has the referrers and its cache record. The action,
// emulated, does the same with the same text in its tags input and no
// image input.
func TestTagsToTwoRegistries(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry", "skopeo")
	open := testenv.StartRegistry(t)
	locked, user, password := testenv.StartAuthRegistry(t)
	config := testenv.DockerConfig(t, locked, user, password)
	env := []string{"DOCKER_CONFIG=" + config, "NIXERY_PASSWORD=not-" + password}
	repos := []string{open + "/e2e/app", locked + "/e2e/app"}
	tags := testenv.MetadataActionTags(repos...)

	r := run(t, env, "build", "--nixpkgs", standIn(), "--username", user, "--tags", strings.Join(tags, "\n"), "--json", "hello")
	assert.Equal(t, r.code, 0, r.stderr)
	var res struct {
		Image        string `json:"image"`
		Digest       string `json:"digest"`
		Repositories []struct {
			Image     string   `json:"image"`
			Reference string   `json:"reference"`
			Tags      []string `json:"tags"`
		} `json:"repositories"`
		Manifests []struct {
			Digest string `json:"digest"`
		} `json:"manifests"`
	}
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &res), r.stdout)
	assert.Equal(t, res.Image, repos[0])
	assert.Assert(t, is.Len(res.Repositories, 2))
	for i, repo := range res.Repositories {
		assert.Equal(t, repo.Image, repos[i])
		assert.Equal(t, repo.Reference, repos[i]+"@"+res.Digest)
		assert.DeepEqual(t, repo.Tags, []string{"1.2.3", "1.2", "latest"})
	}

	creds := func(ref string) []string {
		if strings.HasPrefix(ref, locked) {
			return []string{"--creds", user + ":" + password}
		}
		return nil
	}
	raw := func(ref string) string {
		args := append([]string{"inspect", "--tls-verify=false", "--raw"}, creds(ref)...)
		return testenv.Run(t, "skopeo", append(args, "docker://"+ref)...)
	}
	for _, ref := range tags {
		sum := sha256.Sum256([]byte(raw(ref)))
		assert.Equal(t, "sha256:"+hex.EncodeToString(sum[:]), res.Digest, ref)
	}
	for _, repo := range repos {
		// The SBOM and provenance, in the referrers fallback tag of the
		// platform manifest (the CNCF registry has no referrers API).
		var referrers struct {
			Manifests []struct {
				ArtifactType string `json:"artifactType"`
			} `json:"manifests"`
		}
		fallback := repo + ":sha256-" + strings.TrimPrefix(res.Manifests[0].Digest, "sha256:")
		assert.NilError(t, json.Unmarshal([]byte(raw(fallback)), &referrers))
		assert.Check(t, is.Len(referrers.Manifests, 2), "%s", fallback)
		assert.Check(t, strings.Contains(raw(repo+":nixery-cache"), "org.nixery-action.cache-record"), "%s's cache record", repo)
	}

	// The action, emulated: the same tags, one per line, and no image.
	dir := t.TempDir()
	actionEnv := runnerEnv(dir, "INPUT_PACKAGES=hello", "INPUT_NIXPKGS="+standIn(), "DOCKER_CONFIG="+config,
		"INPUT_TAGS="+strings.Join(testenv.MetadataActionTags(open+"/e2e/action", locked+"/e2e/action"), "\n"))
	r = run(t, actionEnv, "action")
	assert.Equal(t, r.code, 0, "%s%s", r.stdout, r.stderr)
	outputs := runnerOutputs(t, filepath.Join(dir, "output"))
	assert.Assert(t, strings.HasPrefix(outputs["image"], open+"/e2e/action@sha256:"), "%v", outputs)
	digest := strings.TrimPrefix(outputs["image"], open+"/e2e/action@")
	sum := sha256.Sum256([]byte(raw(locked + "/e2e/action:1.2.3")))
	assert.Equal(t, "sha256:"+hex.EncodeToString(sum[:]), digest)
	// The result line and the summary name both repositories, each with
	// its tags.
	each := []string{open + "/e2e/action@" + digest + " as 1.2.3, 1.2, latest", locked + "/e2e/action@" + digest + " as 1.2.3, 1.2, latest"}
	assert.Check(t, is.Contains(r.stdout, "\npushed "+strings.Join(each, "; ")+" ("), r.stdout)
	summary, err := os.ReadFile(filepath.Join(dir, "summary"))
	assert.NilError(t, err)
	for _, repo := range []string{open, locked} {
		assert.Check(t, is.Contains(string(summary), "- `"+repo+"/e2e/action@"+digest+"`: `1.2.3`, `1.2`, `latest`\n"), "%s", summary)
	}
}

// With --push=false, tags naming two repositories in two registries
// describe both, as a push does: the JSON lists each with its tags (and,
// nothing being pushed, no reference), the action's result line and
// summary say where each would have gone. Neither registry receives
// anything: no repository, so no tag, blob or cache record.
func TestTagsToTwoRegistriesNotPushed(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry")
	hosts := []string{testenv.StartRegistry(t), testenv.StartRegistry(t)}
	repos := []string{hosts[0] + "/e2e/dry", hosts[1] + "/e2e/dry"}
	tags := testenv.MetadataActionTags(repos...)

	r := run(t, nil, "build", "--nixpkgs", standIn(), "--push=false", "--tags", strings.Join(tags, ","), "--json", "hello")
	m := decodeJSON(t, jsonSchema(t), r)
	digest, _ := m["digest"].(string)
	assert.Check(t, is.Equal(m["pushed"], false))
	assert.Check(t, is.Equal(m["image"], repos[0]))
	assert.Check(t, m["reference"] == nil, r.stdout)
	want := []any{
		map[string]any{"image": repos[0], "tags": []any{"1.2.3", "1.2", "latest"}},
		map[string]any{"image": repos[1], "tags": []any{"1.2.3", "1.2", "latest"}},
	}
	assert.Check(t, is.DeepEqual(m["repositories"], want), r.stdout)

	// The action, emulated: push false, the same tags one per line.
	dir := t.TempDir()
	r = run(t, runnerEnv(dir, "INPUT_PACKAGES=hello", "INPUT_NIXPKGS="+standIn(), "INPUT_PUSH=false",
		"INPUT_TAGS="+strings.Join(tags, "\n")), "action")
	assert.Equal(t, r.code, 0, "%s%s", r.stdout, r.stderr)
	ownCommands(t, r.stdout)
	digest = runnerOutputs(t, filepath.Join(dir, "output"))["digest"]
	assert.Check(t, is.Contains(r.stdout, "\nbuilt, not pushed: "+digest+" (would be pushed to "+repos[0]+" as 1.2.3, 1.2, latest; to "+repos[1]+" as 1.2.3, 1.2, latest; "), r.stdout)
	raw, err := os.ReadFile(filepath.Join(dir, "summary"))
	assert.NilError(t, err)
	summary := string(raw)
	assert.Check(t, strings.HasPrefix(summary, "### "+repos[0]+" and 1 more\n"), summary)
	assert.Check(t, is.Contains(summary, "Would have been pushed to 2 repositories (push: false):\n\n"), summary)
	for _, repo := range repos {
		assert.Check(t, is.Contains(summary, "- `"+repo+"@"+digest+"`: `1.2.3`, `1.2`, `latest`\n"), summary)
	}
	assert.Check(t, !strings.Contains(summary, "Pushed to"), summary)

	for _, host := range hosts {
		code, body := get(t, "http://"+host+"/v2/_catalog")
		assert.Check(t, is.Equal(code, http.StatusOK), body)
		assert.Check(t, is.Equal(body, `{"repositories":[]}`), host)
		for _, tag := range []string{"1.2.3", "1.2", "latest"} {
			code, body = get(t, "http://"+host+"/v2/e2e/dry/manifests/"+tag)
			assert.Check(t, is.Equal(code, http.StatusNotFound), "%s/e2e/dry:%s: %s", host, tag, body)
		}
	}
}

// get is the status and body a GET of url answers.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	assert.NilError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	assert.NilError(t, err)
	return resp.StatusCode, strings.TrimSpace(string(body))
}
