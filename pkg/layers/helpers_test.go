package layers

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"testing"

	"gotest.tools/v3/assert"
)

// info is one entry of path-info JSON, for building test graphs.
type info struct {
	Path        string   `json:"path"`
	NarSize     uint64   `json:"narSize"`
	ClosureSize uint64   `json:"closureSize,omitempty"`
	References  []string `json:"references"`
}

func storePath(name string) string {
	return fmt.Sprintf("/nix/store/%032d-%s", len(name), name)
}

// graphOf parses test infos as Nix 2.18 prints them (a list).
func graphOf(t testing.TB, infos []info) *Graph {
	t.Helper()
	data, err := json.Marshal(infos)
	assert.NilError(t, err)
	g, err := ParseGraph(data)
	assert.NilError(t, err)
	return g
}

// randomClosure makes a closure of n paths shaped like nixpkgs ones: a few
// libraries everything uses, long-tailed sizes, and a handful of roots.
func randomClosure(seed int64, n int) []info {
	rng := rand.New(rand.NewSource(seed))
	infos := make([]info, n)
	for i := range infos {
		name := fmt.Sprintf("pkg%d-1.%d", i, rng.Intn(10))
		infos[i] = info{
			Path:    fmt.Sprintf("/nix/store/%032x-%s", rng.Uint64(), name),
			NarSize: uint64(1000 + rng.ExpFloat64()*3e6),
		}
		// Paths reference lower-numbered ones only, so the graph is a DAG;
		// the lowest ones are the popular base libraries.
		if i == 0 {
			continue
		}
		refs := map[int]bool{}
		for k := rng.Intn(6); k > 0; k-- {
			var j int
			if rng.Intn(3) == 0 {
				j = rng.Intn(min(i, 8))
			} else {
				j = i - 1 - rng.Intn(min(i, 40))
			}
			refs[j] = true
		}
		for j := range refs {
			infos[i].References = append(infos[i].References, infos[j].Path)
		}
		infos[i].References = append(infos[i].References, infos[i].Path) // Nix lists self references
	}
	return infos
}
