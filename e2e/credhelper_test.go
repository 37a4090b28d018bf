//go:build integration

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// A Docker credential helper is a program of the user's: it gets the
// environment it needs (HOME, PATH, its cloud's settings) but none of the
// secrets nixery holds, which it might log or pass on.
func TestCredentialHelperGetsNoSecrets(t *testing.T) {
	testenv.Require(t, "docker-registry")
	host := testenv.StartRegistry(t)
	bin, cfg := t.TempDir(), t.TempDir()
	dump := filepath.Join(t.TempDir(), "env")
	script := "#!/bin/sh\nenv > '" + dump + "'\necho '{\"Username\":\"u\",\"Secret\":\"p\"}'\n"
	assert.NilError(t, os.WriteFile(filepath.Join(bin, "docker-credential-dump"), []byte(script), 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(cfg, "config.json"), []byte(`{"credHelpers":{"`+host+`":"dump"}}`), 0o644))

	secrets := map[string]string{"GITHUB_TOKEN": "ghs_tokenvalue1", "INPUT_PASSWORD": "inputpassword2",
		"INPUT_NIXPKGS": "git+https://oauth2:flaketoken3@example.com/nixpkgs.git"}
	env := []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "DOCKER_CONFIG=" + cfg, "AWS_PROFILE=kept"}
	for k, v := range secrets {
		env = append(env, k+"="+v)
	}
	// (NIXERY_PASSWORD goes with --username, which logs in without a
	// helper; it is held back from children as these two are.)
	r := run(t, env, "merge", "--image", host+"/e2e/helper", "--tags", "x", "sha256:"+strings.Repeat("1", 64))
	assert.Assert(t, r.code != 0, r.stderr)
	seen, err := os.ReadFile(dump)
	assert.NilError(t, err, "the helper was not run: %s", r.stderr)
	for k, v := range secrets {
		assert.Assert(t, !strings.Contains(string(seen), v), "the credential helper got %s", k)
	}
	assert.Assert(t, strings.Contains(string(seen), "AWS_PROFILE=kept"), string(seen))
	assert.Assert(t, strings.Contains(string(seen), "DOCKER_CONFIG="+cfg), string(seen))
}
