package flaketest

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"gotest.tools/v3/assert"
)

// ggcrRequire is go.mod's requirement of go-containerregistry.
var ggcrRequire = regexp.MustCompile(`(?m)^\s*(?:require\s+)?github\.com/google/go-containerregistry (v\S+)`)

// The crane e2e's BenchmarkServe pulls with (tools/crane, a module of its
// own) is go-containerregistry at the version nixery uses.
func TestCraneMatchesGoMod(t *testing.T) {
	version := func(path string) string {
		data, err := os.ReadFile(path)
		assert.NilError(t, err)
		m := ggcrRequire.FindSubmatch(data)
		assert.Assert(t, m != nil, "%s requires no go-containerregistry", path)
		return string(m[1])
	}
	root := repoRoot(t)
	assert.Equal(t, version(filepath.Join(root, "tools", "crane", "go.mod")), version(filepath.Join(root, "go.mod")),
		"tools/crane/go.mod: go get github.com/google/go-containerregistry@VERSION (as in go.mod), then go mod tidy")
}
