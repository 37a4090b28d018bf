package main

import (
	"bytes"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// Words separated by spaces are split as they are; a JSON array is the
// exec form; both are the command the image gets.
func TestCommandLine(t *testing.T) {
	for in, want := range map[string][]string{
		"":                                  nil,
		"  hello --greeting hi ":            {"hello", "--greeting", "hi"},
		`["bash","-c","echo hello; id"]`:    {"bash", "-c", "echo hello; id"},
		`["sh","-c","echo \"a b\" 'c' \\"]`: {"sh", "-c", `echo "a b" 'c' \`},
	} {
		got, err := commandLine("--cmd", in)
		assert.NilError(t, err, in)
		assert.DeepEqual(t, got, want)
	}
}

// A quote or backslash in the space-separated form would reach the
// image as written (["bash","-c","\"echo","hello;","id\""]) and break it
// only when run: it is refused, naming the word and the JSON array form.
func TestCommandLineRefusesQuotes(t *testing.T) {
	for in, word := range map[string]string{
		`bash -c "echo hello; id"`: `"\"echo"`,
		`sh -c 'echo hi'`:          `"'echo"`,
		`echo a\ b`:                `"a\\"`,
	} {
		for _, flag := range []string{"--cmd", "--entrypoint"} {
			args := []string{"build", "--nixpkgs", "path:/nonexistent", "--output", "oci:" + t.TempDir() + "/o", flag, in, "hello"}
			code, stdout, stderr := runCLI(t, args...)
			assert.Check(t, is.Equal(code, 2), "%v: %s", args, stderr)
			assert.Check(t, is.Equal(stdout, ""))
			want := "nixery build: " + flag + " has the word " + word + `, with a quote or backslash, which words separated by spaces keep as written: give a JSON array instead, e.g. ["bash","-c","echo hello; id"]` +
				"\nRun 'nixery build --help' for usage.\n"
			assert.Check(t, is.Equal(stderr, want), "%v", args)
		}
	}
}

// The action's cmd input, where YAML users write quotes naturally, is
// refused the same way, in the action's words, before any work.
func TestActionCmdRefusesQuotes(t *testing.T) {
	var stdout bytes.Buffer
	err := runAction(envOf(map[string]string{
		"INPUT_PACKAGES": "hello", "INPUT_NIXPKGS": "path:/nonexistent", "INPUT_PUSH": "false",
		"INPUT_CMD": `bash -c "echo hello; id"`,
	}), &stdout)
	want := `the cmd input has the word "\"echo", with a quote or backslash, which words separated by spaces keep as written: give a JSON array instead, e.g. ["bash","-c","echo hello; id"]`
	assert.Error(t, err, want)
	assert.Check(t, is.Equal(stdout.String(), "::error title=nixery::"+want+"\n"))
}
