package flaketest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// compositeAction is the part of action.yml a runner reads.
type compositeAction struct {
	Inputs map[string]struct {
		Required bool   `yaml:"required"`
		Default  string `yaml:"default"`
	} `yaml:"inputs"`
	Outputs map[string]struct {
		Value string `yaml:"value"`
	} `yaml:"outputs"`
	Runs struct {
		Using string       `yaml:"using"`
		Steps []actionStep `yaml:"steps"`
	} `yaml:"runs"`
}

type actionStep struct {
	Name  string            `yaml:"name"`
	ID    string            `yaml:"id"`
	If    string            `yaml:"if"`
	Uses  string            `yaml:"uses"`
	Shell string            `yaml:"shell"`
	Run   string            `yaml:"run"`
	Env   map[string]string `yaml:"env"`
}

// runner runs a composite action the way GitHub's runner does: each step
// gets exactly the env it declares on top of the runner's own variables,
// with ${{ }} expressions substituted first.
type runner struct {
	action compositeAction
	path   string            // GITHUB_ACTION_PATH
	inputs map[string]string // defaults overlaid with the step's with:
	token  string            // github.token
	// github.action_repository: owner/name as the workflow's uses: names
	// the action; empty for uses: ./
	actionRepository string
	baseEnv          []string
	steps            map[string]map[string]string // step id -> outputs
	summary          string                       // GITHUB_STEP_SUMMARY contents
	stdout           string                       // everything the steps printed
	temp             string                       // RUNNER_TEMP of the last run
	// installed, when set, is the nixery binary the step with id install
	// gives, as it does a release's, instead of running that step.
	installed string
}

var expression = regexp.MustCompile(`\$\{\{\s*(.*?)\s*\}\}`)

func newRunner(t *testing.T, actionPath string, with map[string]string, baseEnv []string) *runner {
	t.Helper()
	r := &runner{path: actionPath, token: "ghs_not-a-real-token-0123456789", baseEnv: baseEnv, steps: map[string]map[string]string{}}
	text, err := os.ReadFile(filepath.Join(actionPath, "action.yml"))
	assert.NilError(t, err)
	assert.NilError(t, yaml.Unmarshal(text, &r.action))
	assert.Equal(t, r.action.Runs.Using, "composite")
	r.inputs = map[string]string{}
	for name, in := range r.action.Inputs {
		r.inputs[name] = in.Default
	}
	for name, v := range with {
		_, ok := r.action.Inputs[name]
		assert.Assert(t, ok, "action.yml has no input %q", name)
		r.inputs[name] = v
	}
	return r
}

// eval substitutes the expressions the action uses.
func (r *runner) eval(t *testing.T, s string) string {
	t.Helper()
	return expression.ReplaceAllStringFunc(s, func(m string) string {
		expr := expression.FindStringSubmatch(m)[1]
		switch {
		case strings.HasPrefix(expr, "inputs."):
			v, ok := r.inputs[strings.TrimPrefix(expr, "inputs.")]
			assert.Assert(t, ok, "unknown input in %s", m)
			return v
		case expr == "github.token":
			return r.token
		case expr == "github.action_path":
			return r.path
		case expr == "github.action_repository":
			return r.actionRepository
		case strings.HasPrefix(expr, "steps."):
			parts := strings.Split(expr, ".") // steps.ID.outputs.NAME
			assert.Assert(t, len(parts) == 4 && parts[2] == "outputs", m)
			return r.steps[parts[1]][parts[3]]
		}
		t.Fatalf("the test runner does not know the expression %s", m)
		return ""
	})
}

// condition evaluates the `if:` forms the action uses: comparisons of
// inputs or earlier steps' outputs with literals (== or !=), joined by &&.
func (r *runner) condition(t *testing.T, cond string) bool {
	t.Helper()
	if cond == "" {
		return true
	}
	comparison := regexp.MustCompile(`^(inputs\.[a-z-]+|steps\.[a-z_-]+\.outputs\.[a-z_-]+) (==|!=) '([^']*)'$`)
	for _, part := range strings.Split(cond, "&&") {
		m := comparison.FindStringSubmatch(strings.TrimSpace(part))
		assert.Assert(t, m != nil, "the test runner cannot evaluate if: %s", cond)
		if (r.eval(t, "${{ "+m[1]+" }}") == m[3]) != (m[2] == "==") {
			return false
		}
	}
	return true
}

// run runs every step and returns the error of the first that fails.
func (r *runner) run(t *testing.T) error {
	t.Helper()
	dir := t.TempDir()
	r.temp = dir
	summaryFile := filepath.Join(dir, "summary.md")
	for n, step := range r.action.Runs.Steps {
		if !r.condition(t, step.If) {
			continue
		}
		if step.ID == "install" && r.installed != "" {
			r.steps[step.ID] = map[string]string{"command": r.installed}
			continue
		}
		assert.Assert(t, step.Uses == "", "step %q uses %s, which this test cannot run: set its input off", step.Name, step.Uses)
		assert.Assert(t, !strings.Contains(step.Run, "${{"), "step %q splices an expression into its script", step.Name)
		assert.Equal(t, step.Shell, "bash")

		outputFile := filepath.Join(dir, fmt.Sprintf("output-%d", n))
		assert.NilError(t, os.WriteFile(outputFile, nil, 0o644))
		// What every runner sets; baseEnv may say otherwise.
		env := []string{"RUNNER_OS=Linux", "RUNNER_ARCH=" + runnerArch(t)}
		env = append(env, r.baseEnv...)
		env = append(env,
			"GITHUB_ACTIONS=true",
			"GITHUB_ACTION_PATH="+r.path,
			"GITHUB_OUTPUT="+outputFile,
			"GITHUB_STEP_SUMMARY="+summaryFile,
			"GITHUB_WORKSPACE="+dir,
			"RUNNER_TEMP="+dir,
		)
		for k, v := range step.Env {
			env = append(env, k+"="+r.eval(t, v))
		}
		script := filepath.Join(dir, fmt.Sprintf("step-%d.sh", n))
		assert.NilError(t, os.WriteFile(script, []byte(step.Run), 0o644))
		cmd := exec.Command("/bin/bash", "--noprofile", "--norc", "-eo", "pipefail", script)
		cmd.Env = env
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		r.stdout += string(out)
		if step.ID != "" {
			r.steps[step.ID] = readOutputs(t, outputFile)
		}
		if summary, err := os.ReadFile(summaryFile); err == nil {
			r.summary = string(summary)
		}
		if err != nil {
			return fmt.Errorf("step %q: %v", step.Name, err)
		}
	}
	return nil
}

// outputs maps the action's outputs from its steps' outputs.
func (r *runner) outputs(t *testing.T) map[string]string {
	out := map[string]string{}
	for name, o := range r.action.Outputs {
		out[name] = r.eval(t, o.Value)
	}
	return out
}

// readOutputs parses a GITHUB_OUTPUT file: name=value lines and
// name<<DELIMITER blocks.
func readOutputs(t testing.TB, file string) map[string]string {
	t.Helper()
	f, err := os.Open(file)
	assert.NilError(t, err)
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		if name, delim, ok := strings.Cut(line, "<<"); ok {
			var value []string
			for sc.Scan() && sc.Text() != delim {
				value = append(value, sc.Text())
			}
			out[name] = strings.Join(value, "\n")
		} else if name, value, ok := strings.Cut(line, "="); ok {
			out[name] = value
		}
	}
	assert.NilError(t, sc.Err())
	return out
}

// TestActionWithoutNix: with install-nix false and no nix on PATH, the
// action stops with a message saying how to add Nix.
func TestActionWithoutNix(t *testing.T) {
	root := repoRoot(t)
	empty := t.TempDir()
	r := newRunner(t, root, map[string]string{"packages": "hello", "image": "ghcr.io/example/hello"},
		[]string{"PATH=" + empty, "HOME=" + t.TempDir()})
	err := r.run(t)
	assert.ErrorContains(t, err, `step "Check for Nix"`)
	assert.Assert(t, is.Contains(r.stdout, "::error title=Nix is missing::"))
	assert.Assert(t, is.Contains(r.stdout, "install-nix: true"))
}

// runnerArch is RUNNER_ARCH on a runner like this machine.
func runnerArch(t testing.TB) string {
	switch runtime.GOARCH {
	case "amd64":
		return "X64"
	case "arm64":
		return "ARM64"
	}
	t.Fatalf("no runner architecture for %s", runtime.GOARCH)
	return ""
}

// TestActionInstallNixNotBoolean: install-nix: yes, which the runner's
// `== 'true'` would read as false, stops the action at its first check,
// before Nix is looked for; True passes it, as the runner reads it as true.
func TestActionInstallNixNotBoolean(t *testing.T) {
	root := repoRoot(t)
	r := newRunner(t, root, map[string]string{"packages": "hello", "image": "ghcr.io/example/hello", "install-nix": "yes"},
		[]string{"PATH=" + t.TempDir(), "HOME=" + t.TempDir()})
	err := r.run(t)
	assert.ErrorContains(t, err, `step "Check the runner"`)
	assert.Assert(t, is.Contains(r.stdout, "::error title=nixery-action::input install-nix is neither true nor false"))

	r = newRunner(t, root, map[string]string{"packages": "hello", "image": "ghcr.io/example/hello", "install-nix": "False"},
		[]string{"PATH=" + t.TempDir(), "HOME=" + t.TempDir()})
	assert.ErrorContains(t, r.run(t), `step "Check for Nix"`)
}

// TestActionNixBuildFails: where the action has no release binary (this
// repository records none) and Nix cannot build nixery (here: its daemon
// is not running), the step ends with an ::error:: annotation saying what
// failed and what to do, after Nix's own lines.
func TestActionNixBuildFails(t *testing.T) {
	testenv.Require(t, "nix", "curl")
	root := repoRoot(t)
	r := newRunner(t, root, map[string]string{"packages": "hello", "image": "ghcr.io/example/hello", "install-nix": "false"},
		[]string{
			"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
			// The store is a daemon's socket that nothing listens on.
			"NIX_REMOTE=unix://" + filepath.Join(t.TempDir(), "no-daemon"),
			// Had the repository a release, its download fails: nothing
			// listens on port 1.
			"NIXERY_TEST_RELEASES_URL=http://127.0.0.1:1",
		})
	err := r.run(t)
	assert.ErrorContains(t, err, `step "Build and push"`)
	assert.Assert(t, is.Contains(r.stdout, "cannot connect to socket"), "Nix's output is gone:\n%s", r.stdout)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	last := lines[len(lines)-1]
	assert.Assert(t, strings.HasPrefix(last, "::error title=nixery-action::building nixery with Nix failed (its output is above)"), r.stdout)
	assert.Assert(t, is.Contains(last, "@v1"))
	assert.Equal(t, strings.Count(r.stdout, "::error"), 1, r.stdout)
}
