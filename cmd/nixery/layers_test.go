package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/pkg/layers"
	"github.com/nixery-action/nixery-action/pkg/popularity"
	"github.com/nixery-action/nixery-action/pkg/storepath"
)

func layersTestdata(name string) string {
	return filepath.Join("..", "..", "pkg", "layers", "testdata", name)
}

// buildPlanJSON is what the command must print: the plan Build makes,
// as one line of JSON.
func buildPlanJSON(t *testing.T, closure string, roots []string, popFile string, opts layers.Options) string {
	t.Helper()
	data, err := os.ReadFile(closure)
	assert.NilError(t, err)
	g, err := layers.ParseGraph(data)
	assert.NilError(t, err)
	assert.NilError(t, g.SetRoots(roots))
	if popFile != "" {
		f, err := os.Open(popFile)
		assert.NilError(t, err)
		defer f.Close()
		opts.Popularity, err = popularity.Load(f)
		assert.NilError(t, err)
	}
	plan, err := layers.Plan(g, opts)
	assert.NilError(t, err)
	out, err := json.Marshal(plan)
	assert.NilError(t, err)
	return string(out) + "\n"
}

// checkPlanOutput checks the exact shape scripts read:
// {"layers":[{"key":"sha256:…","paths":["/nix/store/…"],"size":N},…]}.
func checkPlanOutput(t *testing.T, out string, budget int) {
	t.Helper()
	var raw map[string][]map[string]json.RawMessage
	assert.NilError(t, json.Unmarshal([]byte(out), &raw), out)
	assert.Equal(t, len(raw), 1)
	ls, ok := raw["layers"]
	assert.Assert(t, ok && len(ls) >= 1 && len(ls) <= budget, "%d layers for budget %d", len(ls), budget)
	for _, l := range ls {
		assert.Equal(t, len(l), 3, "fields: %v", l)
		var key string
		var paths []string
		var size uint64
		assert.NilError(t, json.Unmarshal(l["key"], &key))
		assert.NilError(t, json.Unmarshal(l["paths"], &paths))
		assert.NilError(t, json.Unmarshal(l["size"], &size))
		assert.Assert(t, strings.HasPrefix(key, "sha256:") && len(key) == 71, key)
		assert.Equal(t, key, layers.KeyOf(paths))
		for _, p := range paths {
			assert.Assert(t, storepath.Valid(p), p)
		}
	}
	assert.Equal(t, strings.Count(out, "\n"), 1, "the plan is one line")
}

func TestLayersPlansAsBuild(t *testing.T) {
	gimp, pop := layersTestdata("debian-gimp.json"), layersTestdata("debian-popularity.json")
	for _, strategy := range layers.Strategies() {
		t.Run(strategy, func(t *testing.T) {
			code, out, errOut := runCLI(t, "layers", "--closure", gimp, "--popularity", pop, "--budget", "7", "--strategy", strategy)
			assert.Equal(t, code, 0, errOut)
			assert.Equal(t, errOut, "")
			checkPlanOutput(t, out, 7)
			assert.Equal(t, out, buildPlanJSON(t, gimp, nil, pop, layers.Options{Strategy: strategy, Budget: 7}))
		})
	}

	// Defaults: budget 94 and the default strategy; this closure has more
	// top-level subtrees than that, so the budget is what limits it.
	code, out, errOut := runCLI(t, "layers", "--closure", gimp, "--popularity", pop)
	assert.Equal(t, code, 0, errOut)
	checkPlanOutput(t, out, layers.DefaultBudget)
	assert.Equal(t, out, buildPlanJSON(t, gimp, nil, pop, layers.Options{Strategy: layers.DefaultStrategy, Budget: 94}))
	code, out, errOut = runCLI(t, "layers", "--closure", gimp, "--popularity", pop, "--strategy", "nixery")
	assert.Equal(t, code, 0, errOut)
	assert.Equal(t, strings.Count(out, `"key"`), 94)

	// Requested roots, given as repeated flags.
	small := layersTestdata("debian-python3-git-curl.json")
	data, err := os.ReadFile(small)
	assert.NilError(t, err)
	g, err := layers.ParseGraph(data)
	assert.NilError(t, err)
	// Request, besides the default roots, a path that shares a layer
	// with a path referencing it: it gets a layer of its own (and may
	// take paths it shared with its referrers out with it).
	var before layers.LayerPlan
	assert.NilError(t, json.Unmarshal([]byte(buildPlanJSON(t, small, nil, "", layers.Options{Strategy: "nixery", Budget: layers.MaxBudget})), &before))
	extra := ""
	for _, l := range before.Layers {
		for _, p := range l.Paths {
			i, _ := g.Index(p)
			for _, r := range g.Refs[i] {
				if hasPath(l.Paths, g.Paths[r].Name) && extra == "" {
					extra = g.Paths[r].Name
				}
			}
		}
	}
	assert.Assert(t, extra != "", "no layer holds a path and one it references")
	roots := []string{extra}
	for _, r := range g.Roots {
		roots = append(roots, g.Paths[r].Name)
	}
	args := []string{"layers", "--closure", small, "--strategy", "nixery", "--budget", strconv.Itoa(layers.MaxBudget)}
	for _, r := range roots {
		args = append(args, "--root", r)
	}
	code, out, errOut = runCLI(t, args...)
	assert.Equal(t, code, 0, errOut)
	checkPlanOutput(t, out, layers.MaxBudget)
	assert.Equal(t, out, buildPlanJSON(t, small, roots, "", layers.Options{Strategy: "nixery", Budget: layers.MaxBudget}))
	assert.Assert(t, strings.Count(out, `"key"`) > len(before.Layers), "--root %s made no layer of its own", extra)
}

// withStdin runs f with os.Stdin reading data.
func withStdin(t *testing.T, data []byte, f func()) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "stdin")
	assert.NilError(t, os.WriteFile(file, data, 0o644))
	in, err := os.Open(file)
	assert.NilError(t, err)
	defer in.Close()
	saved := os.Stdin
	os.Stdin = in
	defer func() { os.Stdin = saved }()
	f()
}

func TestLayersStdin(t *testing.T) {
	closure := layersTestdata("shell-hello-busybox.json")
	data, err := os.ReadFile(closure)
	assert.NilError(t, err)
	withStdin(t, data, func() {
		code, out, errOut := runCLI(t, "layers", "--closure", "-", "--budget", "3")
		assert.Equal(t, code, 0, errOut)
		assert.Equal(t, out, buildPlanJSON(t, closure, nil, "", layers.Options{Budget: 3}))
	})
	withStdin(t, nil, func() {
		code, out, errOut := runCLI(t, "layers", "--closure", "-")
		assert.Equal(t, code, 1)
		assert.Equal(t, out, "")
		assert.Equal(t, errOut, "nixery layers: stdin: closure graph: no input: expected the JSON printed by `nix path-info --json --recursive --closure-size`\n")
	})
}

func TestLayersStrategyHelp(t *testing.T) {
	code, out, errOut := runCLI(t, "layers", "--strategy", "help")
	assert.Equal(t, code, 0, errOut)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	assert.Equal(t, len(lines), len(layers.Strategies()))
	for i, name := range layers.Strategies() {
		want := name
		if name == layers.DefaultStrategy {
			want += " (default)"
		}
		assert.Equal(t, lines[i], want)
	}
	assert.Assert(t, is.Contains(out, "nixery\n"))

	code, out, _ = runCLI(t, "layers", "--help")
	assert.Equal(t, code, 0)
	for _, flag := range []string{"-closure", "-root", "-popularity", "-budget", "-strategy"} {
		assert.Assert(t, is.Contains(out, flag))
	}
}

// Bad input: one clear line on stderr, nothing on stdout, a failing exit
// status.
func TestLayersBadInput(t *testing.T) {
	closure := layersTestdata("shell-hello-busybox.json")
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		assert.NilError(t, os.WriteFile(p, []byte(content), 0o644))
		return p
	}
	notJSON := file("not.json", `{"/nix/store/abc-x": `)
	outside := file("outside.json", `[{"path":"/usr/bin/x"}]`)
	dangling := file("dangling.json", `[{"path":"/nix/store/abc-x","references":["/nix/store/def-y"]}]`)
	badPop := file("pop.json", `{"glibc": -3}`)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing file", []string{"--closure", filepath.Join(dir, "nope.json")}, "read the closure graph: open " + filepath.Join(dir, "nope.json") + ": no such file or directory"},
		{"directory", []string{"--closure", dir}, "read the closure graph: read " + dir + ": is a directory"},
		{"bad JSON", []string{"--closure", notJSON}, notJSON + ": closure graph: invalid JSON object: the input ends in entry"},
		{"not a store path", []string{"--closure", outside}, outside + `: closure graph: "/usr/bin/x" is not a store path under /nix/store/`},
		{"incomplete closure", []string{"--closure", dangling}, `/nix/store/abc-x references "/nix/store/def-y", which is not in the graph`},
		{"unknown root", []string{"--closure", closure, "--root", "/nix/store/aaaa-nope"}, `root "/nix/store/aaaa-nope" is not in the closure graph`},
		{"missing popularity", []string{"--closure", closure, "--popularity", filepath.Join(dir, "nope")}, "read popularity data: open " + filepath.Join(dir, "nope")},
		{"bad popularity", []string{"--closure", closure, "--popularity", badPop}, badPop + `: popularity data: the count of "glibc" is negative (-3)`},
		{"popularity not JSON", []string{"--closure", closure, "--popularity", notJSON}, notJSON + ": popularity data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, append([]string{"layers"}, tc.args...)...)
			assert.Assert(t, code != 0)
			assert.Equal(t, out, "")
			assert.Assert(t, strings.HasPrefix(errOut, "nixery layers: "), errOut)
			assert.Assert(t, is.Contains(errOut, tc.want))
			assert.Equal(t, strings.Count(errOut, "\n"), 1, "not one line: %q", errOut)
		})
	}

	// Calling it wrong, or with a bad flag value, is a usage error: one
	// line, then the hint to --help.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "--closure FILE is required"},
		{[]string{"--closure", closure, "/nix/store/abc-x"}, "unexpected arguments"},
		{[]string{"--closure", closure, "--budget", "0"}, "--budget 0 is out of range: use 1 to 124"},
		{[]string{"--closure", closure, "--budget", "125"}, "--budget 125 is out of range: use 1 to 124 (Docker refuses images of more than 125 layers, and the customisation layer on top is one of them)"},
		{[]string{"--closure", closure, "--budget", "-1"}, "--budget -1 is out of range: use 1 to 124"},
		{[]string{"--closure", closure, "--strategy", "nope"}, `unknown --strategy "nope": use one of ` + strings.Join(layers.Strategies(), ", ")},
	} {
		code, out, errOut := runCLI(t, append([]string{"layers"}, tc.args...)...)
		assert.Equal(t, code, 2, tc.args)
		assert.Equal(t, out, "")
		line, hint, _ := strings.Cut(errOut, "\n")
		assert.Assert(t, is.Contains(line, tc.want), errOut)
		assert.Equal(t, hint, "Run 'nixery layers --help' for usage.\n")
	}
}

func hasPath(paths []string, p string) bool {
	for _, x := range paths {
		if x == p {
			return true
		}
	}
	return false
}
