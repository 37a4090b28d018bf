package flaketest

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestWorkflows keeps rules actionlint does not enforce in every workflow
// of .github/workflows. (scripts/actionlint.sh checks the rest.)
func TestWorkflows(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(repoRoot(t), ".github", "workflows", "*.yml"))
	assert.NilError(t, err)
	assert.Assert(t, len(files) > 0, "no workflows found")
	for _, name := range files {
		t.Run(filepath.Base(name), func(t *testing.T) {
			for _, problem := range workflowProblems(readFile(t, name)) {
				t.Error(problem)
			}
		})
	}
}

// TestWorkflowProblems shows that the rules catch what they are for.
func TestWorkflowProblems(t *testing.T) {
	const head = "name: x\non: push\npermissions:\n  contents: read\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n"
	tests := []struct {
		name, steps string
		want        []string // substrings of the problems, in order
	}{
		{
			name: "clean",
			steps: "      - uses: actions/checkout@de0fac2e4500dabe0009e67214ff5f5447ce83dd # v6.0.2\n" +
				"      - uses: ./\n" +
				"        with:\n          image: ${{ inputs.image }}\n" +
				"      - env:\n          IMAGE: ${{ inputs.image }}\n" +
				"        run: |\n          echo \"$IMAGE\"\n\n          echo done\n" +
				"      - run: echo \"$GITHUB_SHA\"\n",
		},
		{
			name:  "expression in a block script",
			steps: "      - name: s\n        run: |\n          set -e\n\n          echo ${{ inputs.image }}\n",
			want:  []string{"line 13: run: script expands ${{ inputs.image }}"},
		},
		{
			name:  "expression in a folded script",
			steps: "      - run: >-\n          echo\n          ${{ github.event.pull_request.title }}\n",
			want:  []string{"line 11: run: script expands ${{ github.event.pull_request.title }}"},
		},
		{
			name:  "expression in a one-line script",
			steps: "      - run: echo ${{ matrix.platform }}\n",
			want:  []string{"line 9: run: script expands ${{ matrix.platform }}"},
		},
		{
			name:  "the script ends where indentation does",
			steps: "      - run: |\n          echo a\n      - uses: ./\n        with:\n          tags: ${{ github.sha }}\n",
		},
		{
			name:  "image named by the repository as written",
			steps: "      - uses: ./\n        with:\n          image: ghcr.io/${{ github.repository }}/app\n",
			want:  []string{"line 11: ghcr.io/${{ github.repository }} is refused for an owner with capitals"},
		},
		{
			name:  "action by tag",
			steps: "      - uses: actions/checkout@v6\n",
			want:  []string{"line 9: actions/checkout@v6 is not pinned to a commit SHA"},
		},
		{
			name:  "action by branch, quoted",
			steps: "      - uses: 'cachix/install-nix-action@master'\n",
			want:  []string{"cachix/install-nix-action@master is not pinned"},
		},
		{
			name:  "docker image by tag",
			steps: "      - uses: docker://alpine:3.20\n",
			want:  []string{"docker://alpine:3.20 is not pinned to a digest"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := workflowProblems(head + tc.steps)
			assert.Assert(t, is.Len(got, len(tc.want)), "%q", got)
			for i, w := range tc.want {
				assert.Assert(t, is.Contains(got[i], w))
			}
		})
	}

	assert.Assert(t, is.Contains(strings.Join(workflowProblems("on: push\njobs: {}\n"), "\n"), "no top-level permissions"))
}

var (
	runKey  = regexp.MustCompile(`^(\s*)(-\s+)?run:\s*(.*)$`)
	usesKey = regexp.MustCompile(`^\s*(?:-\s+)?uses:\s*['"]?([^'"\s#]+)`)
	sha     = regexp.MustCompile(`^[0-9a-f]{40}$`)
	expr    = regexp.MustCompile(`\$\{\{.*?\}\}`)
)

// workflowProblems lists what breaks the rules in a workflow file:
//   - a top-level permissions block, so the token gets no more than it needs;
//   - no ${{ }} expression inside a run: script, where a value is pasted
//     into shell code before the shell parses it (values go through env:);
//   - actions and reusable workflows from other repositories pinned to a
//     full commit SHA, docker images to a digest;
//   - no image named ghcr.io/${{ github.repository }}: registries take
//     lowercase names only, and expressions cannot lowercase an owner's
//     capitals (a run: step can, as the README shows).
func workflowProblems(text string) []string {
	var problems []string
	if !regexp.MustCompile(`(?m)^permissions:`).MatchString(text) {
		problems = append(problems, "no top-level permissions: block")
	}
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		if strings.Contains(lines[i], "ghcr.io/${{ github.repository }}") {
			problems = append(problems, fmt.Sprintf("line %d: ghcr.io/${{ github.repository }} is refused for an owner with capitals (must be lowercase): set the image in a run: step, echo \"IMAGE=ghcr.io/${GITHUB_REPOSITORY,,}/NAME\" >> \"$GITHUB_ENV\"", i+1))
		}
		if m := usesKey.FindStringSubmatch(lines[i]); m != nil {
			if p := unpinned(m[1]); p != "" {
				problems = append(problems, fmt.Sprintf("line %d: %s", i+1, p))
			}
			continue
		}
		m := runKey.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		script := []int{i}
		if v := m[3]; strings.HasPrefix(v, "|") || strings.HasPrefix(v, ">") {
			// A block scalar: the lines indented deeper than the key (or
			// blank) that follow.
			key := len(m[1]) + len(m[2])
			script = script[:0]
			for j := i + 1; j < len(lines); j++ {
				l := lines[j]
				if strings.TrimSpace(l) != "" && len(l)-len(strings.TrimLeft(l, " ")) <= key {
					break
				}
				script = append(script, j)
			}
		}
		for _, j := range script {
			line := lines[j]
			if j == i {
				line = m[3]
			}
			for _, e := range expr.FindAllString(line, -1) {
				problems = append(problems, fmt.Sprintf("line %d: run: script expands %s; pass it through env: instead", j+1, e))
			}
		}
	}
	return problems
}

// unpinned says why a uses: value is not pinned, or "" when it is.
func unpinned(uses string) string {
	switch {
	case strings.HasPrefix(uses, "./"):
		return "" // this repository, at the commit being run
	case strings.HasPrefix(uses, "docker://"):
		if !strings.Contains(uses, "@sha256:") {
			return uses + " is not pinned to a digest"
		}
		return ""
	}
	_, ref, _ := strings.Cut(uses, "@")
	if !sha.MatchString(ref) {
		return uses + " is not pinned to a commit SHA"
	}
	return ""
}
