//go:build integration

// These tests read action.yml and README.md, which the Nix sandbox's
// copy of the sources (nix/source.nix) leaves out; the integration run
// of scripts/test.sh has them.

package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"gopkg.in/yaml.v3"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/hostile"
	"github.com/nixery-action/nixery-action/internal/testenv"
	"github.com/nixery-action/nixery-action/pkg/layers"
	"github.com/nixery-action/nixery-action/pkg/registry"
)

// actionYML is action.yml's inputs and their defaults.
func actionYML(t *testing.T) map[string]string {
	return testenv.ActionInputs(t, filepath.Join("..", "..", "action.yml"))
}

// The inputs nixery knows are action.yml's, and the README's table
// lists each.
func TestActionInputsAreActionYMLs(t *testing.T) {
	var names []string
	for n := range actionYML(t) {
		names = append(names, n)
	}
	sort.Strings(names)
	known := append([]string(nil), actionInputs...)
	sort.Strings(known)
	assert.DeepEqual(t, known, names)

	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	assert.NilError(t, err)
	var table []string
	for _, line := range strings.Split(string(readme), "\n") {
		if strings.HasPrefix(line, "| `") {
			table = append(table, line)
		}
	}
	rows := strings.Join(table, "\n")
	for _, n := range names {
		assert.Check(t, strings.Contains(rows, "| `"+n+"`") || strings.Contains(rows, ", `"+n+"` |"), "the README's input table misses %s", n)
	}
}

// flagsWithoutInput are the flags of build the action has no input for,
// on purpose, and why. Every other flag is an input of the same name.
var flagsWithoutInput = map[string]string{
	"L":                "short for print-build-logs, which is an input",
	"json":             "the outputs carry the result: metadata is the --json result",
	"level":            "the compression input takes ALGO:LEVEL",
	"password-stdin":   "the password input gives the password; the runner masks it",
	"sbom-file":        "the sbom and sboms outputs name the SBOM files the action writes",
	"jobs":             "uploads at once: tuning for one machine, which the default suits on a runner (build-push-action has no such input either)",
	"registry-timeout": "a cache not read in time is a note (its layers are packed), and the job's timeout-minutes bounds the rest",
}

// Each flag of build is an input of the action, or is listed in
// flagsWithoutInput; each input but packages, merge-digests and
// install-nix (action.yml's own) is a flag of build or merge; and the
// step that runs nixery passes every input nixery reads to it, as
// INPUT_NAME.
func TestActionInputsAreFlags(t *testing.T) {
	build := flag.NewFlagSet("build", flag.ContinueOnError)
	newBuildFlags().register(build)
	merge := flag.NewFlagSet("merge", flag.ContinueOnError)
	(&mergeFlags{}).register(merge)
	build.VisitAll(func(fl *flag.Flag) {
		_, without := flagsWithoutInput[fl.Name]
		assert.Check(t, actionInput(fl.Name) != without, "flag --%s: an input of the action (%t), or listed in flagsWithoutInput (%t), not both", fl.Name, actionInput(fl.Name), without)
	})
	for name := range flagsWithoutInput {
		assert.Check(t, build.Lookup(name) != nil, "flagsWithoutInput names %s, which is no flag of build", name)
	}
	env := nixeryStepEnv(t)
	for _, name := range actionInputs {
		own := name == "packages" || name == "merge-digests" || name == "install-nix"
		assert.Check(t, own || build.Lookup(name) != nil || merge.Lookup(name) != nil, "input %s is no flag of build or merge", name)
		if name != "install-nix" { // the step that runs nixery does not read it
			variable := "INPUT_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
			assert.Check(t, is.Equal(env[variable], "${{ inputs."+name+" }}"), "the step that runs nixery does not pass input %s as %s", name, variable)
		}
	}
}

// The README's account of build's flags, "On your machine", names each
// of them.
func TestREADMENamesBuildFlags(t *testing.T) {
	build := flag.NewFlagSet("build", flag.ContinueOnError)
	newBuildFlags().register(build)
	checkREADMENames(t, "On your machine", build)
}

// The README's account of serve, "As a registry", names each of its
// flags.
func TestREADMENamesServeFlags(t *testing.T) {
	serve := flag.NewFlagSet("serve", flag.ContinueOnError)
	newServeFlags().register(serve)
	checkREADMENames(t, "As a registry: `nixery serve`", serve)
}

// checkREADMENames checks that the README's section under heading (###)
// names each flag of fs, as `--name` (`-n` for one letter).
func checkREADMENames(t *testing.T, heading string, fs *flag.FlagSet) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	assert.NilError(t, err)
	_, readme, ok := strings.Cut(string(raw), "\n### "+heading+"\n")
	assert.Assert(t, ok, "README.md has no section %s", heading)
	readme, _, _ = strings.Cut(readme, "\n### ")
	fs.VisitAll(func(fl *flag.Flag) {
		written := "`--" + fl.Name
		if len(fl.Name) == 1 {
			written = "`-" + fl.Name
		}
		assert.Check(t, strings.Contains(readme, written), "README.md does not name %s's flag %s", fs.Name(), written[1:])
	})
}

// nixeryStepEnv is the env of action.yml's step that runs nixery.
func nixeryStepEnv(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "action.yml"))
	assert.NilError(t, err)
	var action struct {
		Runs struct {
			Steps []struct {
				ID  string            `yaml:"id"`
				Env map[string]string `yaml:"env"`
			} `yaml:"steps"`
		} `yaml:"runs"`
	}
	assert.NilError(t, yaml.Unmarshal(raw, &action))
	for _, s := range action.Runs.Steps {
		if s.ID == "nixery" {
			return s.Env
		}
	}
	t.Fatal("action.yml has no step with id nixery")
	return nil
}

// actionEnv is action.yml's defaults as the runner passes them, with
// GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files in dir, and set on top.
func actionEnv(t *testing.T, dir string, set map[string]string) map[string]string {
	t.Helper()
	env := map[string]string{
		"GITHUB_OUTPUT": filepath.Join(dir, "output"), "GITHUB_STEP_SUMMARY": filepath.Join(dir, "summary"),
		"HOME": dir, "RUNNER_TEMP": dir,
	}
	for _, f := range []string{"output", "summary"} {
		assert.NilError(t, os.WriteFile(filepath.Join(dir, f), nil, 0o644))
	}
	for n, v := range actionYML(t) {
		env["INPUT_"+strings.ToUpper(strings.ReplaceAll(n, "-", "_"))] = v
	}
	for k, v := range set {
		env[k] = v
	}
	return env
}

// With merge-digests, inputs only a build reads are refused, naming
// the input, before the registry is asked; the defaults action.yml
// passes are no such input.
func TestActionMergeRefusesBuildInputs(t *testing.T) {
	reg := testenv.StartHostile(t, hostile.Behaviour{})
	digest := testImage(t, reg.Host+"/ok/img")
	for _, in := range []string{"INPUT_PACKAGES=hello", "INPUT_PLATFORMS=linux/arm64", "INPUT_LABELS=a=b",
		"INPUT_ANNOTATIONS=index:a=b", "INPUT_NO_CACHE=true", "INPUT_SBOM=false", "INPUT_OUTPUT=oci:x", "INPUT_CACHE_FROM=" + reg.Host + "/ok/img",
		"INPUT_TIMEOUT=5m", "INPUT_PRINT_BUILD_LOGS=true", "INPUT_NO_DEFAULT_PACKAGES=true"} {
		t.Run(in, func(t *testing.T) {
			k, v, _ := strings.Cut(in, "=")
			dir := t.TempDir()
			before := reg.Requests()
			err := runAction(envOf(actionEnv(t, dir, map[string]string{
				"INPUT_IMAGE": reg.Host + "/ok/img", "INPUT_MERGE_DIGESTS": digest, k: v,
			})), new(bytes.Buffer))
			input := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(k, "INPUT_")), "_", "-")
			assert.ErrorContains(t, err, "input "+input+" is for building, which merge-digests replaces: a merge only takes image, tags, merge-digests, push, insecure and the login inputs")
			assert.Equal(t, reg.Requests(), before)
		})
	}
	dir := t.TempDir()
	err := runAction(envOf(actionEnv(t, dir, map[string]string{"INPUT_IMAGE": reg.Host + "/ok/img", "INPUT_MERGE_DIGESTS": digest})), new(bytes.Buffer))
	assert.NilError(t, err)
}

// push: false with merge-digests gives the merged index's digest and
// writes nothing: the tag is not there afterwards, and the summary
// says it was not pushed.
func TestActionMergeWithoutPush(t *testing.T) {
	reg := testenv.StartHostile(t, hostile.Behaviour{})
	digest := testImage(t, reg.Host+"/ok/img")
	dir := t.TempDir()
	var stdout bytes.Buffer
	err := runAction(envOf(actionEnv(t, dir, map[string]string{
		"INPUT_IMAGE": reg.Host + "/ok/img", "INPUT_TAGS": "v1", "INPUT_MERGE_DIGESTS": digest, "INPUT_PUSH": "false",
	})), &stdout)
	assert.NilError(t, err, stdout.String())
	outputs, err := os.ReadFile(filepath.Join(dir, "output"))
	assert.NilError(t, err)
	assert.Check(t, is.Contains(string(outputs), "digest<<"))
	assert.Check(t, is.Contains(string(outputs), `"total":`))
	assert.Check(t, !strings.Contains(string(outputs), `"upload":`), "an upload time for a merge that wrote nothing: %s", outputs)
	assert.Check(t, is.Contains(stdout.String(), "built, not pushed: "+reg.Host+"/ok/img@sha256:"))
	tag, err := name.NewTag(reg.Host+"/ok/img:v1", name.Insecure)
	assert.NilError(t, err)
	_, err = remote.Head(tag)
	assert.Check(t, registry.IsNotFound(err), "tag v1 was pushed: %v", err)
	summary, err := os.ReadFile(filepath.Join(dir, "summary"))
	assert.NilError(t, err)
	assert.Check(t, is.Contains(string(summary), "not pushed (push: false)"))
}

// A username with an empty password (a fork's pull request: no
// secrets) warns and goes on anonymously when nothing is pushed; when
// pushing, the error names the inputs and the way out for pull requests.
func TestActionUsernameWithoutPassword(t *testing.T) {
	reg := testenv.StartHostile(t, hostile.Behaviour{})
	digest := testImage(t, reg.Host+"/ok/img")
	set := map[string]string{"INPUT_IMAGE": reg.Host + "/ok/img", "INPUT_MERGE_DIGESTS": digest, "INPUT_USERNAME": "octocat", "INPUT_PUSH": "false"}

	var stdout bytes.Buffer
	err := runAction(envOf(actionEnv(t, t.TempDir(), set)), &stdout)
	assert.NilError(t, err, stdout.String())
	assert.Check(t, is.Contains(stdout.String(), "::warning title=nixery::the username input is set but the password input is empty"))

	set["INPUT_PUSH"] = "true"
	stdout.Reset()
	err = runAction(envOf(actionEnv(t, t.TempDir(), set)), &stdout)
	assert.ErrorContains(t, err, "the username input is set but the password input is empty")
	assert.ErrorContains(t, err, "pull requests from forks get no secrets")
	assert.ErrorContains(t, err, "push: ${{ github.event_name != 'pull_request' }}")
	assert.Check(t, !strings.Contains(err.Error(), "--"), err.Error())
}

// Bad input values are named with what would do.
func TestActionInputValues(t *testing.T) {
	reg := testenv.StartHostile(t, hostile.Behaviour{})
	for in, want := range map[string]string{
		"INPUT_PUSH=yes":          `input push: "yes" is not a boolean: use true or false`,
		"INPUT_TAGS=feature/x":    `tag "feature/x" holds a '/', which a tag cannot`,
		"INPUT_IMAGE=":            "the image input is required",
		"INPUT_IMAGE=ghcr.io/A/b": "repository names must be lowercase",
	} {
		k, v, _ := strings.Cut(in, "=")
		err := runAction(envOf(actionEnv(t, t.TempDir(), map[string]string{
			"INPUT_IMAGE": reg.Host + "/ok/img", "INPUT_MERGE_DIGESTS": "sha256:" + strings.Repeat("1", 64), k: v,
		})), new(bytes.Buffer))
		assert.Check(t, is.ErrorContains(err, want), in)
	}
}

// A build's numeric input that does not parse is named with its range.
func TestActionNumericInput(t *testing.T) {
	err := runAction(envOf(actionEnv(t, t.TempDir(), map[string]string{
		"INPUT_PACKAGES": "hello", "INPUT_PUSH": "false", "INPUT_LAYER_BUDGET": "abc",
	})), new(bytes.Buffer))
	assert.Error(t, err, fmt.Sprintf(`input layer-budget takes a whole number, not "abc": most layers (N) for the packages' store paths, 1 to %d`, layers.MaxBudget))
}

// In action mode stderr has the error once, its hint once, in the
// action's words (inputs, not flags), and no pointer to --help.
func TestActionStderrNamesInputs(t *testing.T) {
	reg := testenv.StartHostile(t, hostile.Behaviour{RequireAuth: true})
	dir := t.TempDir()
	for k, v := range actionEnv(t, dir, map[string]string{
		"INPUT_IMAGE": reg.Host + "/ok/img", "INPUT_MERGE_DIGESTS": "sha256:" + strings.Repeat("1", 64),
		"DOCKER_CONFIG": dir, "GITHUB_TOKEN": "",
	}) {
		t.Setenv(k, v)
	}
	code, stdout, stderr := runCLI(t, "action")
	assert.Equal(t, code, 1, stdout+stderr)
	assert.Check(t, is.Equal(strings.Count(stderr, "\n"), 1), stderr)
	assert.Check(t, is.Equal(strings.Count(stderr, "; set the username and password inputs for "+reg.Host), 1), stderr)
	assert.Check(t, !strings.Contains(stderr, "docker login") && !strings.Contains(stderr, "--"), stderr)

	t.Setenv("INPUT_TAGS", "feature/x")
	code, _, stderr = runCLI(t, "action")
	assert.Equal(t, code, 2, stderr)
	assert.Check(t, !strings.Contains(stderr, "--help"), stderr)
	assert.Check(t, is.Equal(strings.Count(stderr, "\n"), 1), stderr)
}

// Tags with push false and no image name nothing: the build is refused
// before Nix runs, in the action's words (inputs, not flags).
func TestActionTagsWithoutImageNorPush(t *testing.T) {
	err := runAction(envOf(actionEnv(t, t.TempDir(), map[string]string{
		"INPUT_PACKAGES": "hello", "INPUT_NIXPKGS": "path:/nonexistent", "INPUT_PUSH": "false", "INPUT_TAGS": "v1",
	})), new(bytes.Buffer))
	assert.Check(t, is.Error(err, "tags: v1 tag nothing: push: false without the image input builds an image no tag names; add image: REGISTRY/NAME (nothing is pushed there), or drop the tags input"))
}
