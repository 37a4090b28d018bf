package nix

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// Nix's copy of a git work tree holds only the files git tracks: a
// flake.nix on disk that Nix does not find is untracked, and the error
// says so, in the words of Nix 2.8 and of Nix 2.26; a path: flake, which
// Nix copies whole, gets no such hint.
func TestCommandErrorUntrackedFlake(t *testing.T) {
	dir := t.TempDir()
	assert.NilError(t, os.Mkdir(filepath.Join(dir, ".git"), 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "flake.nix"), []byte("{ outputs = _: { }; }\n"), 0o644))
	t.Chdir(dir)
	for _, stderr := range []string{
		"warning: Git tree '/tmp/x' is dirty\nerror: getting status of '/nix/store/0ccnxa25whszw7mgbgyzdm4nqc0zwnm8-source/flake.nix': No such file or directory\n",
		"error: path '/nix/store/0ccnxa25whszw7mgbgyzdm4nqc0zwnm8-source/flake.nix' does not exist\n",
	} {
		for ref, hinted := range map[string]bool{".": true, "git+file:" + dir: true, "path:.": false} {
			err := withUntrackedHint(ref, NewCommandError(`reading the flake "."`, stderr, errors.New("exit status 1")))
			line, _, _ := strings.Cut(err.Error(), "\n")
			assert.Check(t, is.Equal(strings.HasSuffix(line, " (flake.nix is not tracked by git: Nix reads only the files git tracks; run git add flake.nix and any file it reads)"), hinted), "%s: %s", ref, line)
		}
	}
	// Another failure of the same flake gets no hint.
	err := withUntrackedHint(".", NewCommandError(`reading the flake "."`, "error: syntax error, unexpected '}'\n", errors.New("exit status 1")))
	assert.Check(t, !strings.Contains(err.Error(), "not tracked"), err.Error())
}

// Systems missing the same packages share one message; others keep their own.
func TestJoinNotFound(t *testing.T) {
	amd := &NotFoundError{System: "x86_64-linux", Missing: []string{"foo", "helo"}, Suggestions: map[string][]string{"helo": {"hello"}}}
	arm := &NotFoundError{System: "aarch64-linux", Missing: []string{"foo", "helo"}, Suggestions: map[string][]string{"helo": {"hello"}}}
	riscv := &NotFoundError{System: "riscv64-linux", Missing: []string{"bar"}}
	assert.Error(t, JoinNotFound([]*NotFoundError{amd, arm}),
		"not found in nixpkgs for x86_64-linux and aarch64-linux: foo, helo (did you mean hello?)")
	assert.Error(t, JoinNotFound([]*NotFoundError{amd, riscv, arm}),
		"not found in nixpkgs for x86_64-linux and aarch64-linux: foo, helo (did you mean hello?); not found in nixpkgs for riscv64-linux: bar")
}

// A flake whose inputs are not locked fails in pure evaluation, which
// nix build would have locked on the fly: the message says what to do,
// in the words of Nix 2.8 and of newer Nix alike.
func TestCommandErrorUnlockedFlake(t *testing.T) {
	for _, headline := range []string{
		"cannot update flake input 'nixpkgs' in pure mode",
		"cannot update unlocked flake input 'nixpkgs' in pure mode",
	} {
		err := &CommandError{What: "evaluating the flake . for x86_64-linux", Headline: headline, Err: errors.New("exit status 1")}
		assert.Equal(t, err.Error(), "evaluating the flake . for x86_64-linux failed: "+headline+
			" (the flake's flake.lock is missing or out of date: run nix flake lock in the flake and commit flake.lock)")
	}
}
