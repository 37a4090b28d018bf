//go:build integration

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// jsonSchema compiles the JSON Schema that docs/json.md documents: the
// first ```json block of the page.
func jsonSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs", "json.md"))
	assert.NilError(t, err)
	_, rest, ok := strings.Cut(string(doc), "```json\n")
	assert.Assert(t, ok, "docs/json.md has no ```json block")
	block, _, ok := strings.Cut(rest, "```")
	assert.Assert(t, ok)
	schema, err := jsonschema.UnmarshalJSON(strings.NewReader(block))
	assert.NilError(t, err)
	c := jsonschema.NewCompiler()
	assert.NilError(t, c.AddResource("json.md", schema))
	s, err := c.Compile("json.md")
	assert.NilError(t, err)
	return s
}

// decodeJSON checks that a command succeeded and printed JSON the
// documented schema accepts, and returns it.
func decodeJSON(t *testing.T, s *jsonschema.Schema, r result) map[string]any {
	t.Helper()
	assert.Equal(t, r.code, 0, r.stderr)
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(r.stdout))
	assert.NilError(t, err, r.stdout)
	assert.NilError(t, s.Validate(inst), r.stdout)
	var m map[string]any
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &m))
	return m
}

// TestJSONSchema: what build --json and merge --json print is what
// docs/json.md documents, for a push, a build not pushed and a merge.
func TestJSONSchema(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry")
	s := jsonSchema(t)
	repo := testenv.StartRegistry(t) + "/json/hello"
	args := []string{"build", "--nixpkgs", standIn(), "--platforms", "linux/amd64,linux/arm64", "--image", repo, "--json"}

	pushed := decodeJSON(t, s, run(t, nil, append(args, "--tags", "v1", "hello")...))
	assert.Check(t, is.Equal(pushed["pushed"], true))
	timings := pushed["timings"].(map[string]any)
	assert.Check(t, timings["upload"] != nil, "%v", timings)
	var platforms []any
	for _, m := range pushed["manifests"].([]any) {
		m := m.(map[string]any)
		platforms = append(platforms, m["platform"])
		layers := m["layers"].([]any)
		assert.Check(t, is.Equal(layers[len(layers)-1].(map[string]any)["customisation"], true))
	}
	assert.Check(t, is.DeepEqual(platforms, []any{"linux/amd64", "linux/arm64"}))
	assert.Check(t, is.DeepEqual(timings["nix"].(map[string]any)["linux/arm64"] != nil, true))
	// What makes each image big: its unpacked size and largest packages,
	// hello's among them.
	contents := pushed["contents"].([]any)
	assert.Assert(t, is.Len(contents, 2))
	for _, c := range contents {
		c := c.(map[string]any)
		assert.Check(t, c["bytes"].(float64) > 0, "%v", c)
		var names []string
		for _, p := range c["largest"].([]any) {
			names = append(names, p.(map[string]any)["package"].(string))
		}
		assert.Check(t, is.Contains(names, "hello"), "%v", names)
	}

	notPushed := decodeJSON(t, s, run(t, nil, append(args, "--push=false", "--tags", "v2", "hello")...))
	assert.Check(t, is.Equal(notPushed["pushed"], false))
	assert.Check(t, is.DeepEqual(notPushed["tags"], []any{"v2"}))
	_, hasRef := notPushed["reference"]
	assert.Check(t, !hasRef)
	timings = notPushed["timings"].(map[string]any)
	for _, phase := range []string{"upload", "cache"} {
		_, ok := timings[phase]
		assert.Check(t, !ok, "%s timed though nothing was pushed: %v", phase, timings)
	}

	merged := decodeJSON(t, s, run(t, nil, "merge", "--image", repo, "--tags", "merged", "--json", pushed["digest"].(string)))
	assert.Check(t, is.Equal(merged["digest"], pushed["digest"]))

	// The schema can fail: the platform as the descriptor names it, or
	// a field it does not document, is refused.
	for _, bad := range []string{
		strings.Replace(mustJSON(t, pushed), `"linux/arm64"`, `"linux/arm64/v8"`, 1),
		strings.Replace(mustJSON(t, pushed), `"schemaVersion":1`, `"schemaVersion":1,"surprise":true`, 1),
	} {
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(bad))
		assert.NilError(t, err)
		assert.Check(t, s.Validate(inst) != nil, bad)
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	assert.NilError(t, err)
	return string(b)
}
