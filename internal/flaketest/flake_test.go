package flaketest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestFlakeLock checks flake.lock against flake.nix: a lock whose original
// differs from the input's url makes Nix lock again, to whatever the
// branch holds that day.
func TestFlakeLock(t *testing.T) {
	root := repoRoot(t)
	url := nixAssignment(t, readFile(t, filepath.Join(root, "flake.nix")), "inputs.nixpkgs.url")

	var lock struct {
		Version int
		Root    string
		Nodes   map[string]struct {
			Inputs   map[string]string
			Locked   map[string]any
			Original map[string]string
		}
	}
	assert.NilError(t, json.Unmarshal([]byte(readFile(t, filepath.Join(root, "flake.lock"))), &lock))
	assert.Equal(t, lock.Version, 7)
	node, ok := lock.Nodes[lock.Nodes[lock.Root].Inputs["nixpkgs"]]
	assert.Assert(t, ok, "flake.lock has no node for the root's nixpkgs input")

	o := node.Original
	assert.Equal(t, "github:"+o["owner"]+"/"+o["repo"]+"/"+o["ref"], url, "flake.lock's original differs from inputs.nixpkgs.url")
	assert.Equal(t, node.Locked["type"], "github")
	assert.Equal(t, node.Locked["owner"], o["owner"])
	assert.Equal(t, node.Locked["repo"], o["repo"])
	assert.Assert(t, is.Regexp(`^[0-9a-f]{40}$`, node.Locked["rev"].(string)))
	assert.Assert(t, is.Regexp(`^sha256-[A-Za-z0-9+/]{43}=$`, node.Locked["narHash"].(string)))
	lastModified, ok := node.Locked["lastModified"].(float64)
	assert.Assert(t, ok && lastModified > 0, "flake.lock's nixpkgs has no lastModified")
}

// nixAssignment returns the string assigned to name in a Nix file, which
// must be assigned exactly once.
func nixAssignment(t *testing.T, text, name string) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(name) + `\s*=\s*"([^"]*)";`)
	m := re.FindAllStringSubmatch(text, -1)
	if len(m) != 1 {
		t.Fatalf("flake.nix must assign %s = \"...\"; exactly once (found %d)", name, len(m))
	}
	return m[0][1]
}

func readFile(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	assert.NilError(t, err)
	return string(b)
}
