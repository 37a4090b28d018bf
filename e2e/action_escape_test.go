//go:build integration

package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"unicode"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// injection is what a hostile input appends: workflow commands on lines of
// their own, old and new style, indented, and an escape that must not be
// decoded.
const injection = "\n::set-output name=digest::evil\n::error::x\r\n##[warning]y\n  ::add-mask::z %0A"

// actionInputs reads the inputs of action.yml and their defaults.
func actionInputs(t *testing.T) map[string]string {
	t.Helper()
	inputs := testenv.ActionInputs(t, filepath.Join(repoRoot, "action.yml"))
	assert.Assert(t, len(inputs) > 20, "inputs of action.yml: %v", inputs)
	return inputs
}

// inputEnv is the INPUT_* variable action.yml passes an input through.
func inputEnv(name string) string {
	return "INPUT_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// dataEscape is GitHub's escaping of a command's data, written here
// independently of pkg/ghaction.
var dataEscape = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A")

// ownCommands checks that every line of text that a runner would read as
// a workflow command is one nixery issues itself: a group of a platform,
// its end, the mask of a secret it was given, or its error.
func ownCommands(t *testing.T, text string, secrets ...string) {
	t.Helper()
	own := regexp.MustCompile(`^(::group::Build linux/[a-z0-9/]+|::endgroup::|::(error|warning) title=nixery::.*)$`)
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimLeftFunc(line, unicode.IsSpace) // as the runner trims
		if !strings.HasPrefix(trimmed, "::") && !strings.HasPrefix(trimmed, "##[") {
			continue
		}
		ok := own.MatchString(line)
		for _, s := range secrets {
			ok = ok || (s != "" && line == "::add-mask::"+dataEscape.Replace(s))
		}
		assert.Check(t, ok, "a command nixery did not mean: %q in\n%s", line, text)
	}
}

// runnerOutputs parses GITHUB_OUTPUT as the runner does (name=value or
// name<<DELIMITER ... DELIMITER), failing on any line of neither form.
func runnerOutputs(t *testing.T, file string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return map[string]string{}
	}
	assert.NilError(t, err)
	out := map[string]string{}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		if lines[i] == "" && i == len(lines)-1 {
			break
		}
		if name, delim, ok := strings.Cut(lines[i], "<<"); ok {
			var value []string
			for i++; i < len(lines) && lines[i] != delim; i++ {
				value = append(value, lines[i])
			}
			assert.Assert(t, i < len(lines), "output %s: no closing delimiter in %q", name, raw)
			out[name] = strings.Join(value, "\n")
			continue
		}
		name, value, ok := strings.Cut(lines[i], "=")
		assert.Assert(t, ok, "line %q of GITHUB_OUTPUT is no output: %q", lines[i], raw)
		out[name] = value
	}
	return out
}

// summaryLinesStartNoCommand checks that no value broke out of its
// heading, paragraph or table cell onto a line of its own.
func summaryLinesStartNoCommand(t *testing.T, summary string) {
	t.Helper()
	for _, line := range strings.Split(summary, "\n") {
		bare := strings.TrimLeft(line, "#|`> \t")
		assert.Check(t, !strings.HasPrefix(bare, "::") && !strings.HasPrefix(bare, "##["),
			"a value broke its line in the summary: %q in\n%s", line, summary)
	}
}

// TestActionInputsIssueNoCommands gives every input of action.yml, one at
// a time, a value with workflow commands on lines of their own. Whatever
// nixery makes of it (an image, or an error), the only commands on stdout
// and stderr are its own, GITHUB_OUTPUT holds nixery's outputs and no
// other, and the summary keeps each value on its line.
func TestActionInputsIssueNoCommands(t *testing.T) {
	testenv.Require(t, "nix")
	defaults := actionInputs(t)
	names := make([]string, 0, len(defaults))
	for name := range defaults {
		names = append(names, name)
	}
	sort.Strings(names)
	succeeded := 0
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			inputs := map[string]string{}
			for k, v := range defaults {
				inputs[k] = v
			}
			inputs["packages"] = "hello"
			inputs["nixpkgs"] = standIn()
			inputs["output"] = "oci:" + filepath.Join(dir, "image")
			inputs[name] += injection
			env := append([]string{"GITHUB_OUTPUT=" + filepath.Join(dir, "output"), "GITHUB_STEP_SUMMARY=" + filepath.Join(dir, "summary"),
				"RUNNER_TEMP=" + dir, "HOME=" + dir}, githubEnv...)
			for k, v := range inputs {
				env = append(env, inputEnv(k)+"="+v)
			}
			r := run(t, env, "action")
			// The runner trims inputs; so does nixery, before masking.
			ownCommands(t, r.stdout, strings.TrimSpace(inputs["password"]))
			ownCommands(t, r.stderr)

			outputs := runnerOutputs(t, filepath.Join(dir, "output"))
			summary, _ := os.ReadFile(filepath.Join(dir, "summary"))
			summaryLinesStartNoCommand(t, string(summary))
			if r.code != 0 {
				assert.DeepEqual(t, outputs, map[string]string{})
				assert.Check(t, is.Contains(r.stdout, "::error title=nixery::"))
				return
			}
			succeeded++
			var keys []string
			for k := range outputs {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			assert.DeepEqual(t, keys, []string{"digest", "image", "manifests", "metadata", "sbom", "sboms"})
			assert.Assert(t, regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(outputs["digest"]), outputs["digest"])
			// Written to an output, the image is no NAME@DIGEST.
			assert.Check(t, is.Equal(outputs["image"], ""))
			if name == "output" {
				// The result line names the directory, line breaks and
				// all, on one line, its ##[ defused (the runner takes
				// one anywhere in a line), its % kept (a plain line is
				// not unescaped).
				assert.Check(t, is.Contains(r.stdout, "image%0A::set-output name=digest::evil%0A::error::x%0D%0A%23#[warning]y%0A  ::add-mask::z %0A: sha256:"))
				assert.Check(t, regexp.MustCompile(`(?m)^### .*set-output.*add-mask.*$`).MatchString(string(summary)), "%s", summary)
			}
		})
	}
	// The ones that take any text: output (a directory may be named so),
	// and those nixery does not read.
	assert.Check(t, succeeded >= 2, "only %d inputs gave an image", succeeded)
}

// TestActionGroupsPerPlatform: the log has one group per platform, named
// as the platforms are everywhere else (linux/amd64), in platform order
// whatever order they were asked in, and every line in a group is of its
// platform.
func TestActionGroupsPerPlatform(t *testing.T) {
	testenv.Require(t, "nix")
	dir := t.TempDir()
	env := runnerEnv(dir, "INPUT_PACKAGES=hello", "INPUT_NIXPKGS="+standIn(), "INPUT_PLATFORMS=linux/arm64,linux/amd64",
		"INPUT_OUTPUT=oci:"+filepath.Join(dir, "image"), "INPUT_SBOM=false")
	r := run(t, env, "action")
	assert.Equal(t, r.code, 0, "%s%s", r.stdout, r.stderr)
	ownCommands(t, r.stdout)

	var commands []string
	group := ""
	label := regexp.MustCompile(`^(?:[0-9:]+ )?(?:uploaded |uploading )?\[([^\]]+)\]`)
	for _, line := range strings.Split(r.stdout, "\n") {
		switch {
		case strings.HasPrefix(line, "::group::"):
			commands = append(commands, line)
			group = strings.TrimPrefix(line, "::group::Build ")
		case line == "::endgroup::":
			commands = append(commands, line)
			group = ""
		default:
			m := label.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			assert.Check(t, m[1] == "linux/amd64" || m[1] == "linux/arm64", "a platform named otherwise: %q", line)
			if group != "" {
				assert.Check(t, m[1] == group, "a line of %s in the group of %s: %q", m[1], group, line)
			}
		}
	}
	assert.DeepEqual(t, commands, []string{
		"::group::Build linux/amd64", "::endgroup::",
		"::group::Build linux/arm64", "::endgroup::",
	})
	assert.Check(t, !strings.Contains(r.stdout, "x86_64-linux]") && !strings.Contains(r.stdout, "aarch64-linux]"), r.stdout)
}
