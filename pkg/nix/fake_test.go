package nix

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
)

// fakeNix is a stand-in `nix` program that answers each subcommand with
// recorded output, so that the behaviour of Nix versions that cannot be
// installed here is tested with what they print. It records every call's
// arguments and environment.
type fakeNix struct {
	t    *testing.T
	dir  string
	path string
}

// fakeScript answers the k-th call of subcommand SUB (metadata, prefetch,
// eval, build, path-info) with the files SUB.k.out (stdout), SUB.k.err
// (stderr) and SUB.k.exit (status, default 0); a call without a SUB.k.out
// fails. Asked its version, it says nothing, or what setVersion gave.
// Calls may run concurrently: the counters are taken under a lock (mkdir
// is atomic).
const fakeScript = `#!/bin/sh
d=%q
# The recorded answers are of Nix 2.8 and later: no version to check,
# unless one is set (setVersion).
if [ "$1" = --version ]; then [ -f "$d/version" ] && cat "$d/version" && exit 0; exit 1; fi
until mkdir "$d/lock" 2>/dev/null; do sleep 0.01; done
n=$(( $(cat "$d/calls" 2>/dev/null || echo 0) + 1 ))
echo $n > "$d/calls"
printf '%%s\n' "$@" > "$d/args.$n"
env > "$d/env.$n"
shift 2 # --extra-experimental-features "nix-command flakes"
case "$1" in flake) sub=$2 ;; *) sub=$1 ;; esac
k=$(( $(cat "$d/$sub.calls" 2>/dev/null || echo 0) + 1 ))
echo $k > "$d/$sub.calls"
rmdir "$d/lock"
[ -f "$d/$sub.$k.err" ] && cat "$d/$sub.$k.err" >&2
[ -f "$d/$sub.$k.out" ] || { echo "fake nix: no answer for call $k of $sub" >&2; exit 99; }
cat "$d/$sub.$k.out"
exit $(cat "$d/$sub.$k.exit" 2>/dev/null || echo 0)
`

func newFakeNix(t *testing.T) *fakeNix {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "nix")
	assert.NilError(t, os.WriteFile(path, []byte(fmt.Sprintf(fakeScript, dir)), 0o755))
	return &fakeNix{t: t, dir: dir, path: path}
}

// answer records what the k-th call of sub prints and how it ends.
func (f *fakeNix) answer(sub string, k int, stdout, stderr string, exit int) {
	f.t.Helper()
	base := filepath.Join(f.dir, fmt.Sprintf("%s.%d", sub, k))
	assert.NilError(f.t, os.WriteFile(base+".out", []byte(stdout), 0o644))
	if stderr != "" {
		assert.NilError(f.t, os.WriteFile(base+".err", []byte(stderr), 0o644))
	}
	if exit != 0 {
		assert.NilError(f.t, os.WriteFile(base+".exit", []byte(fmt.Sprint(exit)), 0o644))
	}
}

// setVersion is what nix --version prints.
func (f *fakeNix) setVersion(line string) {
	f.t.Helper()
	assert.NilError(f.t, os.WriteFile(filepath.Join(f.dir, "version"), []byte(line+"\n"), 0o644))
}

// calls returns each call's arguments, after the common ones.
func (f *fakeNix) calls() [][]string {
	f.t.Helper()
	var out [][]string
	for n := 1; ; n++ {
		data, err := os.ReadFile(filepath.Join(f.dir, fmt.Sprintf("args.%d", n)))
		if os.IsNotExist(err) {
			return out
		}
		assert.NilError(f.t, err)
		args := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
		assert.DeepEqual(f.t, args[:2], commonArgs)
		out = append(out, args[2:])
	}
}

// env returns the environment of the n-th call (from 1).
func (f *fakeNix) env(n int) map[string]string {
	f.t.Helper()
	data, err := os.ReadFile(filepath.Join(f.dir, fmt.Sprintf("env.%d", n)))
	assert.NilError(f.t, err)
	env := map[string]string{}
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		k, v, _ := strings.Cut(l, "=")
		env[k] = v
	}
	return env
}
