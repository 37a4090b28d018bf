package layers

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixery-action/nixery-action/internal/closuregen"
	"github.com/nixery-action/nixery-action/pkg/storepath"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// info is one entry of path-info JSON, for building test graphs.
type info = closuregen.Info

// storePath makes a store path for a test package name.
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

// asObject prints infos as Nix 2.19 and later do: an object keyed by path.
func asObject(t testing.TB, infos []info) []byte {
	t.Helper()
	obj := map[string]info{}
	for _, i := range infos {
		p := i.Path
		i.Path = ""
		obj[p] = i
	}
	data, err := json.Marshal(obj)
	assert.NilError(t, err)
	return data
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	assert.NilError(t, err)
	return data
}

func TestParseGraphForms(t *testing.T) {
	infos := randomClosure(1, 50)
	list, err := json.Marshal(infos)
	assert.NilError(t, err)
	want, err := ParseGraph(list)
	assert.NilError(t, err)
	assert.Equal(t, len(want.Paths), 50)

	// The same closure listed in another order, with references in
	// another order and repeated.
	rng := rand.New(rand.NewSource(1))
	shuffled := append([]info(nil), infos...)
	rng.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
	for i := range shuffled {
		refs := append([]string(nil), shuffled[i].References...)
		rng.Shuffle(len(refs), func(a, b int) { refs[a], refs[b] = refs[b], refs[a] })
		shuffled[i].References = append(refs, refs...)
	}
	shuffledList, err := json.Marshal(shuffled)
	assert.NilError(t, err)
	// Newer JSON formats print store paths without the store directory.
	bare := append([]info(nil), infos...)
	for i := range bare {
		bare[i].Path = strings.TrimPrefix(bare[i].Path, storepath.Dir)
		var refs []string
		for _, r := range bare[i].References {
			refs = append(refs, strings.TrimPrefix(r, storepath.Dir))
		}
		bare[i].References = refs
	}

	for name, data := range map[string][]byte{
		"object":             asObject(t, infos),
		"shuffled list":      shuffledList,
		"shuffled object":    asObject(t, shuffled),
		"bare names":         asObject(t, bare),
		"indented":           []byte("\n  " + string(list) + "\n\n"),
		"object with fields": []byte(strings.Replace(string(asObject(t, infos)), `"narSize"`, `"valid":true,"storeDir":"/nix/store","ca":{"method":"nar"},"narHash":"sha256-x","narSize"`, 1)),
		"hash as an object":  []byte(strings.Replace(string(list), `"narSize"`, `"narHash":{"algorithm":"sha256"},"narSize"`, 1)),
	} {
		t.Run(name, func(t *testing.T) {
			g, err := ParseGraph(data)
			assert.NilError(t, err)
			// A narHash string is kept (for SBOMs); other forms are ignored.
			var hashes []string
			for i := range g.Paths {
				if g.Paths[i].NarHash != "" {
					hashes = append(hashes, g.Paths[i].NarHash)
					g.Paths[i].NarHash = ""
				}
			}
			if name == "object with fields" {
				assert.DeepEqual(t, hashes, []string{"sha256-x"})
			} else {
				assert.Equal(t, len(hashes), 0)
			}
			assert.DeepEqual(t, g.Paths, want.Paths)
			assert.DeepEqual(t, g.Refs, want.Refs)
			assert.DeepEqual(t, g.Roots, want.Roots)
		})
	}
}

// The realistic closures in testdata parse, and the sizes Nix printed are
// the ones the graph holds.
func TestParseGraphTestdata(t *testing.T) {
	for _, name := range []string{"shell-hello-busybox.json", "debian-podman.json", "debian-python3-git-curl.json", "debian-gimp.json"} {
		data := readTestdata(t, name)
		g, err := ParseGraph(data)
		assert.NilError(t, err, name)
		var infos []info
		if data[0] == '[' {
			assert.NilError(t, json.Unmarshal(data, &infos))
		} else {
			var obj map[string]info
			assert.NilError(t, json.Unmarshal(data, &obj))
			for p, i := range obj {
				i.Path = p
				infos = append(infos, i)
			}
		}
		assert.Equal(t, len(g.Paths), len(infos), name)
		for _, i := range infos {
			k, ok := g.Index(i.Path)
			assert.Assert(t, ok, i.Path)
			assert.Equal(t, g.Paths[k].NarSize, i.NarSize)
			assert.Equal(t, g.Paths[k].ClosureSize, i.ClosureSize, i.Path)
		}
	}
}

// naiveClosureSize sums the NAR sizes of everything reachable from i.
func naiveClosureSize(g *Graph, i int) uint64 {
	seen := map[int]bool{}
	var total uint64
	var walk func(int)
	walk = func(j int) {
		if seen[j] {
			return
		}
		seen[j] = true
		total += g.Paths[j].NarSize
		for _, r := range g.Refs[j] {
			walk(r)
		}
	}
	walk(i)
	return total
}

// Without --closure-size, closure sizes are computed from the references.
func TestParseGraphClosureSizes(t *testing.T) {
	a, b, c := storePath("a"), storePath("b"), storePath("c")
	g := graphOf(t, []info{
		{Path: a, NarSize: 1, References: []string{b, c, a}},
		{Path: b, NarSize: 10, References: []string{c}},
		{Path: c, NarSize: 100},
	})
	ia, _ := g.Index(a)
	ib, _ := g.Index(b)
	ic, _ := g.Index(c)
	assert.Equal(t, g.Paths[ia].ClosureSize, uint64(111))
	assert.Equal(t, g.Paths[ib].ClosureSize, uint64(110))
	assert.Equal(t, g.Paths[ic].ClosureSize, uint64(100))
	assert.DeepEqual(t, g.Roots, []int{ia})
	assert.DeepEqual(t, g.Refs[ia], []int{ib, ic}) // self reference dropped

	// In one chunk and in several (the last one partial).
	defer func(c int) { closureChunk = c }(closureChunk)
	for _, chunk := range []int{closureChunk, 64, 128} {
		closureChunk = chunk
		for seed := int64(1); seed <= 5; seed++ {
			infos := randomClosure(seed, 300)
			for i := range infos {
				infos[i].ClosureSize = 0
			}
			g := graphOf(t, infos)
			for i := range g.Paths {
				assert.Equal(t, g.Paths[i].ClosureSize, naiveClosureSize(g, i), "chunk %d", chunk)
			}
		}
	}
}

func TestSetRoots(t *testing.T) {
	a, b, c := storePath("a"), storePath("b"), storePath("c")
	g := graphOf(t, []info{
		{Path: a, NarSize: 1, References: []string{b}},
		{Path: b, NarSize: 1, References: []string{c}},
		{Path: c, NarSize: 1},
	})
	ia, _ := g.Index(a)
	ib, _ := g.Index(b)
	ic, _ := g.Index(c)
	assert.DeepEqual(t, g.Roots, []int{ia})
	assert.NilError(t, g.SetRoots([]string{c, b, c}))
	assert.DeepEqual(t, g.Roots, []int{ib, ic})
	assert.NilError(t, g.SetRoots([]string{strings.TrimPrefix(a, storepath.Dir)}))
	assert.DeepEqual(t, g.Roots, []int{ia})
	assert.NilError(t, g.SetRoots(nil)) // keeps what was set
	assert.DeepEqual(t, g.Roots, []int{ia})
	err := g.SetRoots([]string{a, storePath("zzz")})
	assert.ErrorContains(t, err, `root "`+storePath("zzz")+`" is not in the closure graph`)
	assert.DeepEqual(t, g.Roots, []int{ia}) // unchanged by the failed call
	_, ok := g.Index(storePath("zzz"))
	assert.Assert(t, !ok)
}

func TestTopoOrder(t *testing.T) {
	for seed := int64(1); seed <= 5; seed++ {
		g := graphOf(t, randomClosure(seed, 200))
		order := g.TopoOrder()
		assert.Equal(t, len(order), len(g.Paths))
		pos := make([]int, len(g.Paths))
		for i := range pos {
			pos[i] = -1
		}
		for k, i := range order {
			assert.Equal(t, pos[i], -1, "path %d twice", i)
			pos[i] = k
		}
		for i, refs := range g.Refs {
			for _, r := range refs {
				assert.Assert(t, pos[r] < pos[i], "%s before its reference %s", g.Paths[i].Name, g.Paths[r].Name)
			}
		}
		assert.DeepEqual(t, g.TopoOrder(), order)
	}
}

// Every kind of malformed input is an error naming what is wrong.
func TestParseGraphErrors(t *testing.T) {
	a, b, c := storePath("a"), storePath("b"), storePath("c")
	for _, tc := range []struct {
		name, input, want string
	}{
		{"no input", ``, "no input"},
		{"blank", " \n", "no input"},
		{"not JSON", `{"`, "invalid JSON object"},
		{"ends in an entry", `{"` + a + `": `, "invalid JSON object: the input ends in entry"},
		{"broken list", `[{"path":"` + a + `"`, "invalid JSON list"},
		{"not a list or object", `"x"`, "expected the JSON list or object"},
		{"number", `42`, "expected the JSON list or object"},
		{"empty list", `[]`, "closure graph is empty"},
		{"empty object", `{}`, "closure graph is empty"},
		{"null entry", `[null]`, "entry 0 is null"},
		{"entry without path", `[{"narSize":1}]`, `entry 0 has no "path"`},
		{"null object value", `{"` + a + `":null}`, a + " has no path info (null)"},
		{"object value not an object", `{"` + a + `":5}`, `entry "` + a + `"`},
		{"not valid", `[{"path":"` + a + `","valid":false}]`, a + " is not valid"},
		{"other store", `[{"path":"` + a + `","storeDir":"/gnu/store"}]`, "is in the store /gnu/store"},
		{"dangling reference", `[{"path":"` + a + `","references":["` + b + `"]}]`, a + ` references "` + b + `", which is not in the graph`},
		{"reference outside the store", `[{"path":"` + a + `","references":["/usr/lib/libc.so"]}]`, `references "/usr/lib/libc.so"`},
		{"duplicate", `[{"path":"` + a + `"},{"path":"` + a + `"}]`, a + " appears more than once"},
		{"duplicate key", `{"` + a + `":{},"` + a + `":{}}`, a + " appears more than once"},
		{"duplicate bare and full", `{"` + a + `":{},"` + strings.TrimPrefix(a, storepath.Dir) + `":{}}`, a + " appears more than once"},
		{"outside the store", `[{"path":"/usr/bin/hello"}]`, `"/usr/bin/hello" is not a store path`},
		{"object key outside the store", `{"/usr/bin/hello":{}}`, `"/usr/bin/hello" is not a store path`},
		{"below a store path", `[{"path":"` + a + `/bin"}]`, `"` + a + `/bin" is not a store path`},
		{"the store itself", `[{"path":"/nix/store/"}]`, "is not a store path"},
		{"bad character", `[{"path":"/nix/store/abc-x y"}]`, `"/nix/store/abc-x y" is not a store path`},
		{"dot dot", `[{"path":"/nix/store/.."}]`, "is not a store path"},
		{"cycle", `[{"path":"` + a + `","references":["` + b + `"]},{"path":"` + b + `","references":["` + a + `"]}]`, "no root"},
		{"cycle below a root", `[{"path":"` + c + `","references":["` + a + `"]},{"path":"` + a + `","references":["` + b + `"]},{"path":"` + b + `","references":["` + a + `"]}]`, "reference cycle through"},
		{"key and path differ", `{"` + a + `":{"path":"` + b + `"}}`, `entry "` + a + `" has path "` + b + `"`},
		{"wrong field type", `[{"path":"` + a + `","narSize":"big"}]`, "entry 0 (" + a + "): json: cannot unmarshal string"},
		{"negative size", `[{"path":"` + a + `","narSize":-1}]`, "entry 0 (" + a + "): json: cannot unmarshal number -1"},
		{"entry not an object", `[{"path":"` + a + `"}, 5]`, "entry 1: json: cannot unmarshal number"},
		{"references not a list", `{"` + a + `":{"references":"` + b + `"}}`, `entry "` + a + `"`},
		{"trailing data after object", `{"` + a + `":{}} x`, "after the JSON object"},
		{"second object", `{"` + a + `":{}} {}`, "after the JSON object"},
		{"trailing data after list", `[{"path":"` + a + `"}] x`, "invalid JSON list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := ParseGraph([]byte(tc.input))
			assert.Assert(t, g == nil)
			assert.ErrorContains(t, err, tc.want)
			assert.Assert(t, is.Contains(err.Error(), "closure graph"))
			assert.Assert(t, !strings.Contains(err.Error(), "\n"), "error on more than one line: %q", err)
		})
	}
}

func TestValidStorePath(t *testing.T) {
	for p, want := range map[string]bool{
		"/nix/store/0c0h0g0f0e0d0c0b0a09080706050403-openssl-3.0.13": true,
		"/nix/store/abc-a+b_c.d?e=f":                                 true,
		"/nix/store/abc":                                             true,
		"/nix/store/":                                                false,
		"/nix/store/abc/bin":                                         false,
		"/nix/store/.":                                               false,
		"/nix/store/..":                                              false,
		"/nix/store/abc-x y":                                         false,
		"/nix/store/abc-é":                                           false,
		"nix/store/abc":                                              false,
		"/gnu/store/abc-x":                                           false,
		"abc-x":                                                      false,
		"":                                                           false,
	} {
		assert.Equal(t, storepath.Valid(p), want, p)
	}
}
