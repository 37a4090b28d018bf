//go:build integration

package e2e

import (
	"net/http"
	"regexp"
	"sync/atomic"
	"testing"

	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// countingProxy forwards to a registry and counts the requests.
func countingProxy(t *testing.T, registry string) (string, *atomic.Int64) {
	var n atomic.Int64
	front := testenv.Front(t, registry, func(http.ResponseWriter, *http.Request) bool {
		n.Add(1)
		return false
	})
	return front, &n
}

// TestBuildSummaries: the line a build prints says what became of the
// image; a build that pushes nothing says where it would have gone and
// does not touch the registry.
func TestBuildSummaries(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry")
	front, requests := countingProxy(t, testenv.StartRegistry(t))
	repo := front + "/summary/hello"
	digest := `sha256:[0-9a-f]{64}`
	build := func(args ...string) string {
		t.Helper()
		r := run(t, nil, append(append([]string{"build", "--nixpkgs", standIn(), "--image", repo}, args...), "hello")...)
		assert.Equal(t, r.code, 0, r.stderr)
		return r.stdout
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--push=false", "--tags", "v1,latest"},
			`^built, not pushed: ` + repo + `@` + digest + ` \(would be pushed as v1, latest; 5 layers\)\n$`},
		{[]string{"--push=false", "--push-by-digest"},
			`^built, not pushed: ` + repo + `@` + digest + ` \(would be pushed by digest; 5 layers\)\n$`},
	} {
		assert.Assert(t, regexp.MustCompile(tc.want).MatchString(build(tc.args...)), tc.args)
	}
	assert.Equal(t, requests.Load(), int64(0), "a build that pushes nothing read the registry")

	out := build("--tags", "v1")
	assert.Assert(t, regexp.MustCompile(`^pushed `+repo+`@`+digest+` as v1 \(5 layers uploaded, 0 already there\)\n$`).MatchString(out), out)
	out = build("--push-by-digest", "--platforms", "linux/arm64")
	assert.Assert(t, regexp.MustCompile(`^pushed by digest, no tags: `+repo+`@`+digest+` \(5 layers uploaded, 0 already there\)\n$`).MatchString(out), out)
}
