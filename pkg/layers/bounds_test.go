package layers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
)

// nixObjectClosure prints a closure of n paths as Nix 2.19 and later do
// (an object keyed by path) with every field a cache.nixos.org path has:
// deriver, a signature, registration time, and ten references each
// (nixpkgs' paths average fewer), so its size is what a real closure of n
// paths takes. The references go to the first 100 paths, as most of a
// real closure's go to a few base libraries.
func nixObjectClosure(seed int64, n int) []byte {
	rng := rand.New(rand.NewSource(seed))
	paths := make([]string, n)
	for i := range paths {
		paths[i] = fmt.Sprintf("/nix/store/%032x-package%d-1.2.3", rng.Uint64(), i)
	}
	type entry struct {
		CA               *string  `json:"ca"`
		ClosureSize      uint64   `json:"closureSize"`
		Deriver          string   `json:"deriver"`
		NarHash          string   `json:"narHash"`
		NarSize          uint64   `json:"narSize"`
		References       []string `json:"references"`
		RegistrationTime int64    `json:"registrationTime"`
		Signatures       []string `json:"signatures"`
		Ultimate         bool     `json:"ultimate"`
	}
	obj := map[string]entry{}
	for i, p := range paths {
		e := entry{
			Deriver:          strings.TrimSuffix(p, "-1.2.3") + ".drv",
			NarHash:          "sha256-J/8X+dvEcJWRgYiGYSNr1BEgOkzx+jHed2s1J+n2+0I=",
			NarSize:          uint64(rng.Intn(1 << 24)),
			RegistrationTime: 1796540416,
			Signatures:       []string{"cache.nixos.org-1:" + strings.Repeat("A", 86) + "=="},
			References:       []string{},
		}
		for k := 0; k < 10 && i > 0; k++ {
			e.References = append(e.References, paths[rng.Intn(min(i, 100))])
		}
		obj[p] = e
	}
	data, err := json.Marshal(obj)
	if err != nil {
		panic(err)
	}
	return data
}

// A closure of 100,000 paths as Nix prints it is well within the bounds.
func TestReadGraphLargeRealClosure(t *testing.T) {
	data := nixObjectClosure(1, 100_000)
	t.Logf("a closure of 100,000 paths: %.1f MiB of JSON", float64(len(data))/(1<<20))
	assert.Assert(t, len(data) < MaxClosureBytes/2, "%d bytes", len(data))
	g, err := ReadGraph(bytes.NewReader(data))
	assert.NilError(t, err)
	assert.Equal(t, len(g.Paths), 100_000)
}

// Input that is not JSON at all, such as /dev/zero, fails at its first
// byte without being read further.
func TestReadGraphDevZero(t *testing.T) {
	f, err := os.Open("/dev/zero")
	assert.NilError(t, err)
	defer f.Close()
	_, err = ReadGraph(f)
	assert.Error(t, err, errNotPathInfo.Error())
}

// More entries than the bound fail before all are decoded, in both forms
// (with the bound lowered to 1,000 to be quick).
func TestParseGraphTooManyPaths(t *testing.T) {
	pathBound = 1000
	t.Cleanup(func() { pathBound = MaxClosurePaths })
	entry := `{"path":"/nix/store/00000000000000000000000000000000-x"}`
	list := "[" + strings.Repeat(entry+",", pathBound) + entry + "]"
	_, err := ParseGraph([]byte(list))
	assert.ErrorContains(t, err, fmt.Sprintf("more than %d paths", pathBound))

	obj := "{" + strings.Repeat(`"k":{},`, pathBound) + `"k":{}}`
	_, err = ParseGraph([]byte(obj))
	assert.ErrorContains(t, err, fmt.Sprintf("more than %d paths", pathBound))
}
