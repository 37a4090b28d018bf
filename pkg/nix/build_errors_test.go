package nix

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// recorded is Nix's stderr for a failed build, as testdata/README.md says
// it was recorded, made into the error a failed build returns.
func recorded(t *testing.T, name string) *CommandError {
	t.Helper()
	stderr, err := os.ReadFile(filepath.Join("testdata", name))
	assert.NilError(t, err)
	return NewCommandError("nix build for x86_64-linux", string(stderr), errors.New("exit status 1"))
}

// oneLine is the error as nixery's CLI shows it after Nix's own output:
// without Nix's last lines (see cmd/nixery's nixErrorOnce).
func oneLine(t *testing.T, ce *CommandError) string {
	t.Helper()
	short := *ce
	short.Tail = ""
	msg := short.Error()
	assert.Assert(t, !strings.Contains(msg, "\n"), "not one line: %q", msg)
	return msg
}

// The one-line error of a failed build says why it failed, in the words
// of Nix 2.8 and of Nix 2.34, which gives the reason on the lines after
// "Cannot build" and a block for each derivation above the failing one.
func TestRecordedBuildFailures(t *testing.T) {
	for _, tc := range []struct {
		file string
		want string // the whole one-line error
	}{
		{"nix-2.8.0/fail.stderr", "nix build for x86_64-linux failed: builder for '/nix/store/5ch24i96qifsk6fybzhdshfycibd8rc4-fail.drv' failed with exit code 2;"},
		{"nix-2.8.0/chain.stderr", "nix build for x86_64-linux failed: builder for '/nix/store/yq1lh0bsrmqlqwvhqx56w62zrhpmbglw-leaf.drv' failed with exit code 2;"},
		{"nix-2.34.8/fail.stderr", "nix build for x86_64-linux failed: Cannot build '/nix/store/5ch24i96qifsk6fybzhdshfycibd8rc4-fail.drv': builder failed with exit code 2"},
		{"nix-2.34.8/chain.stderr", "nix build for x86_64-linux failed: Cannot build '/nix/store/yq1lh0bsrmqlqwvhqx56w62zrhpmbglw-leaf.drv': builder failed with exit code 2"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			ce := recorded(t, tc.file)
			assert.Equal(t, oneLine(t, ce), tc.want)
			// With Nix's last lines too, the same first line.
			assert.Assert(t, strings.HasPrefix(ce.Error(), tc.want+"\n  Nix said:"), ce.Error())
		})
	}
}

// Every derivation failed because a dependency did: the headline keeps
// the first one's reason.
func TestHeadlineOnlyDependencies(t *testing.T) {
	head, _ := summarize("error: Cannot build '/nix/store/a-low.drv'.\n       Reason: 2 dependencies failed.\n       Output paths:\n         /nix/store/b-low\n" +
		"error: Cannot build '/nix/store/c-top.drv'.\n       Reason: 1 dependency failed.\n")
	assert.Equal(t, head, "Cannot build '/nix/store/a-low.drv': 2 dependencies failed")
}

// A derivation for a system this machine has no builder for: nixery's
// explanation, found in all of Nix's output, not only in its last lines.
func TestRecordedMissingBuilder(t *testing.T) {
	arm := "Nix must build /nix/store/8v1d9cm6lnjx2hairwczsfbkw3sv255v-armlib.drv for aarch64-linux, but this machine is x86_64-linux and has no aarch64-linux builder: configure one"
	for _, file := range []string{"nix-2.8.0/arm.stderr", "nix-2.34.8/arm.stderr"} {
		t.Run(file, func(t *testing.T) {
			ce := recorded(t, file)
			assert.Assert(t, is.Contains(oneLine(t, ce), "nix build for x86_64-linux failed: "+arm))
			assert.Assert(t, is.Contains(ce.Error(), arm))
		})
	}

	// Deeper, the refusal is more than Nix's last lines away: the blocks
	// of the chain's three derivations above its leaf follow it.
	chain, err := os.ReadFile(filepath.Join("testdata", "nix-2.34.8", "chain.stderr"))
	assert.NilError(t, err)
	above := string(chain[strings.Index(string(chain), "error: Cannot build '/nix/store/1bhc"):])
	armStderr, err := os.ReadFile(filepath.Join("testdata", "nix-2.34.8", "arm.stderr"))
	assert.NilError(t, err)
	ce := NewCommandError("nix build for aarch64-linux", string(armStderr)+above, errors.New("exit status 1"))
	assert.Assert(t, !strings.Contains(ce.Tail, "Required system"), "the refusal is still in the tail:%s", ce.Tail)
	assert.Assert(t, is.Contains(ce.Error(), arm))
	assert.Assert(t, is.Contains(oneLine(t, ce), arm))
}

// A derivation that requires system features this machine's Nix lacks,
// on a machine of its system: the features are named, and no builder for
// the machine's own system is asked for.
func TestMissingSystemFeatures(t *testing.T) {
	const drv = "/nix/store/y08ps33ldqxj9br9j33s354bicb9x673-znver4.drv"
	stderrs := map[string]string{
		// Nix 2.30 to 2.33, src/libstore/build/derivation-building-goal.cc
		// of 2.33.0, lines 408-412.
		"nix 2.33": "error: Cannot build '" + drv + "'.\n" +
			"       Reason: required system or feature not available\n" +
			"       Required system: 'x86_64-linux' with features {gccarch-znver4}\n" +
			"       Current system: 'x86_64-linux' with features {benchmark, big-parallel, kvm, nixos-test, uid-range}\n",
	}
	for _, file := range []string{"nix-2.8.0/znver4.stderr", "nix-2.34.8/znver4.stderr"} {
		b, err := os.ReadFile(filepath.Join("testdata", file))
		assert.NilError(t, err)
		stderrs[file] = string(b)
	}
	for name, stderr := range stderrs {
		t.Run(name, func(t *testing.T) {
			ce := NewCommandError("nix build for x86_64-linux", stderr, errors.New("exit status 1"))
			msg := oneLine(t, ce)
			assert.Assert(t, is.Contains(msg, "Nix must build "+drv+" with the system features {gccarch-znver4}, which this machine's Nix does not have"))
			assert.Assert(t, is.Contains(msg, "system-features in nix.conf"))
			assert.Assert(t, is.Contains(msg, "remote builder that has them"))
			assert.Assert(t, !strings.Contains(msg, "has no x86_64-linux builder"), msg)
		})
	}
}

// A build that fails on Nix 2.34 returns the error that says why, all the
// way through Builder.Build (Nix's recorded stderr, from a stand-in nix).
func TestBuildFailureSaysWhy(t *testing.T) {
	stderr, err := os.ReadFile(filepath.Join("testdata", "nix-2.34.8", "chain.stderr"))
	assert.NilError(t, err)
	f := newFakeNix(t)
	f.answer("metadata", 1, determinateMetadata, "", 0)
	f.answer("eval", 1, `{"hasSystem":true,"packages":[{"attr":"hello","drvPath":"/nix/store/9qykxb55bzscihi8aj9x9ihz5qwx3dzi-top.drv","status":"package","output":"out"}]}`, "", 0)
	f.answer("build", 1, "", string(stderr), 1)
	b := &Builder{Flake: "github:NixOS/nixpkgs", Nix: f.path}
	_, err = b.Build(context.Background(), "x86_64-linux", []string{"hello"})
	var ce *CommandError
	assert.Assert(t, errors.As(err, &ce), "%v", err)
	assert.Equal(t, oneLine(t, ce), "nix build for x86_64-linux failed: Cannot build '/nix/store/yq1lh0bsrmqlqwvhqx56w62zrhpmbglw-leaf.drv': builder failed with exit code 2")
	assert.Assert(t, !strings.Contains(ce.Tail, "builder failed"), "the reason is in Nix's last lines:%s", ce.Tail)
}
