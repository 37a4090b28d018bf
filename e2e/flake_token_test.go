//go:build integration

package e2e

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// tokenFlake is a flake of its own (no inputs) with app, a program, and
// site, data with no bin/, as a tarball that a server on loopback hands
// out only for ?access_token=token: what a private release asset is.
// It returns the server's address.
func tokenFlake(t *testing.T, token string) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	assert.NilError(t, os.MkdirAll(filepath.Join(src, "app"), 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(src, "app", "flake.nix"), []byte(`{
  outputs = { self }: {
    packages.x86_64-linux = {
      app = builtins.derivation {
        name = "app-1.0";
        system = "x86_64-linux";
        builder = "/bin/sh";
        args = [ "-c" "/bin/mkdir -p $out/bin && echo 'echo hi' > $out/bin/app && /bin/chmod +x $out/bin/app" ];
      } // { meta.mainProgram = "app"; };
      site = builtins.derivation {
        name = "site-1.0";
        system = "x86_64-linux";
        builder = "/bin/sh";
        args = [ "-c" "/bin/mkdir -p $out/share && echo hi > $out/share/index.html" ];
      } // { meta.mainProgram = "site"; };
    };
  };
}
`), 0o644))
	tarball := filepath.Join(t.TempDir(), "app.tar.gz")
	testenv.Run(t, "tar", "-czf", tarball, "-C", src, "app")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("access_token") != token {
			http.Error(w, "no such release", http.StatusNotFound)
			return
		}
		http.ServeFile(w, r, tarball)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// A token in a flake reference of the packages input is masked by the
// runner in the log, but the summary escapes markdown ('_' as '\_'), so
// the mask would not match there: the summary, the outputs and the
// errors name the flake with the token hidden. The metadata still
// records what the app starts.
func TestActionFlakeTokenHidden(t *testing.T) {
	testenv.Require(t, "nix", "tar")
	const token = "s3cr3t_t0ken"
	url := tokenFlake(t, token)
	ref := url + "/app.tar.gz?access_token=" + token

	dir := t.TempDir()
	r := run(t, runnerEnv(dir, "INPUT_PACKAGES="+ref+"#app", "INPUT_NIXPKGS="+standIn(), "INPUT_PUSH=false", "INPUT_SBOM=false"), "action")
	assert.Equal(t, r.code, 0, "%s%s", r.stdout, r.stderr)
	ownCommands(t, r.stdout, "access_token="+token)
	for _, name := range []string{"summary", "output"} {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		assert.NilError(t, err)
		assert.Check(t, !strings.Contains(string(raw), "s3cr3t"), "the token is in the %s:\n%s", name, raw)
	}
	summary, err := os.ReadFile(filepath.Join(dir, "summary"))
	assert.NilError(t, err)
	assert.Check(t, is.Contains(string(summary), "access\\_token=REDACTED\\#app"), "%s", summary)
	outputs := runnerOutputs(t, filepath.Join(dir, "output"))
	var metadata appResult
	assert.NilError(t, json.Unmarshal([]byte(outputs["metadata"]), &metadata))
	assert.Assert(t, is.Len(metadata.Installables, 1))
	assert.Check(t, is.Equal(metadata.Installables[0].MainProgram, "app"))

	// site has no bin/site: the error names it with the token hidden.
	r = run(t, []string{"HOME=" + t.TempDir()}, "build", "--push=false", "--nixpkgs", standIn(), ref+"#site")
	assert.Equal(t, r.code, 1, "%s%s", r.stdout, r.stderr)
	assert.Check(t, is.Contains(r.stderr, "has no program bin/site"))
	assert.Check(t, !strings.Contains(r.stdout+r.stderr, token), "%s%s", r.stdout, r.stderr)
}
