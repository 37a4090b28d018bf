//go:build integration

package nix

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// Every missing name is reported at once, for each system, and names of
// sets of packages are told apart from missing ones.
func TestBuildNotFound(t *testing.T) {
	testenv.Require(t, "nix")
	b := &Builder{Flake: standIn(t)}
	for _, system := range []string{"x86_64-linux", "aarch64-linux"} {
		_, err := b.Build(context.Background(), system, []string{
			"hello", "nosuchpkg", "python3Packages.nope", "alsomissing", "hello.nope", "python3Packages",
		})
		var nf *NotFoundError
		assert.Assert(t, errors.As(err, &nf), "%v", err)
		assert.DeepEqual(t, nf, &NotFoundError{
			System:      system,
			Missing:     []string{"alsomissing", "hello.nope", "nosuchpkg", "python3Packages.nope"},
			NotPackages: []string{"python3Packages"},
		})
		assert.Assert(t, is.Contains(err.Error(),
			"not found in nixpkgs for "+system+": alsomissing, hello.nope, nosuchpkg, python3Packages.nope"))
		assert.Assert(t, is.Contains(err.Error(), "python3Packages.NAME"))
	}
}

// A missing name gets the closest names of the set it is missing from,
// top-level or nested, from the same evaluation; a name inside a package
// (a derivation's attributes) gets none.
func TestBuildNotFoundSuggests(t *testing.T) {
	testenv.Require(t, "nix")
	b := &Builder{Flake: standIn(t)}
	for _, system := range []string{"x86_64-linux", "aarch64-linux"} {
		_, err := b.Build(context.Background(), system, []string{"helo", "python3Packages.reqests", "coreutil", "hello.nme", "zzzzzzzz"})
		var nf *NotFoundError
		assert.Assert(t, errors.As(err, &nf), "%v", err)
		assert.DeepEqual(t, nf.Suggestions, map[string][]string{
			"helo":                    {"hello"},
			"python3Packages.reqests": {"python3Packages.requests"},
			"coreutil":                {"coreutils", "moreutils"},
		})
		assert.Equal(t, err.Error(), "not found in nixpkgs for "+system+": coreutil (did you mean coreutils or moreutils?), "+
			"hello.nme, helo (did you mean hello?), python3Packages.reqests (did you mean python3Packages.requests?), zzzzzzzz")
	}
}

func TestBuildErrors(t *testing.T) {
	testenv.Require(t, "nix")
	failing := writeFlake(t, `{
		fails = drv "fails" "echo deliberate failure of the builder >&2; exit 3";
		throws = throw "this package is broken on purpose";
		ok = drv "ok" "echo ok > $out";
	}`)
	x86Only := writeFlake(t, `{}`)
	// writeFlake gives both systems; this one has legacyPackages for one.
	assert.NilError(t, os.WriteFile(strings.TrimPrefix(x86Only, "path:")+"/flake.nix",
		[]byte(`{ outputs = { self }: { legacyPackages.x86_64-linux = { }; }; }`), 0o644))

	cases := []struct {
		name   string
		flake  string
		system string
		attrs  []string
		nix    string
		want   []string
	}{
		{name: "build failure", flake: failing, system: "x86_64-linux", attrs: []string{"ok", "fails"},
			want: []string{"nix build for x86_64-linux failed: ", "deliberate failure of the builder", "Nix said:"}},
		{name: "evaluation error", flake: failing, system: "aarch64-linux", attrs: []string{"throws"},
			want: []string{"evaluating nixpkgs for aarch64-linux failed: ", "this package is broken on purpose"}},
		{name: "missing flake", flake: "path:/nonexistent/flake", system: "x86_64-linux", attrs: []string{"hello"},
			want: []string{`reading the nixpkgs flake "path:/nonexistent/flake" failed`, "/nonexistent/flake"}},
		{name: "not a flake", flake: "path:" + t.TempDir(), system: "x86_64-linux", attrs: []string{"hello"},
			want: []string{"reading the nixpkgs flake", "flake.nix"}},
		{name: "system missing from the flake", flake: x86Only, system: "aarch64-linux", attrs: []string{"hello"},
			want: []string{"has no legacyPackages.aarch64-linux"}},
		{name: "fragment", flake: "path:/x#hello", system: "x86_64-linux", attrs: []string{"hello"},
			want: []string{"#fragment"}},
		{name: "option", flake: "--impure", system: "x86_64-linux", attrs: []string{"hello"},
			want: []string{"starts with '-'"}},
		{name: "no flake", flake: "", system: "x86_64-linux", attrs: []string{"hello"},
			want: []string{"no nixpkgs flake reference"}},
		{name: "bad system", flake: standIn(t), system: "x86_64-linux.hello", attrs: []string{"hello"},
			want: []string{`invalid Nix system "x86_64-linux.hello"`}},
		{name: "no packages", flake: standIn(t), system: "x86_64-linux", attrs: nil,
			want: []string{"no packages"}},
		{name: "no nix", flake: standIn(t), system: "x86_64-linux", attrs: []string{"hello"}, nix: "/nonexistent/nix",
			want: []string{"cannot run Nix", "install Nix"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := &Builder{Flake: tc.flake, Nix: tc.nix}
			_, err := b.Build(context.Background(), tc.system, tc.attrs)
			assert.Assert(t, err != nil)
			t.Log(err)
			for _, w := range tc.want {
				assert.Assert(t, is.Contains(err.Error(), w))
			}
		})
	}
}

// A build that outlasts the timeout is stopped, its builder with it, and
// the error says what to do.
func TestBuildTimeout(t *testing.T) {
	testenv.Require(t, "nix")
	pidFile := filepath.Join(t.TempDir(), "pid")
	flake := writeFlake(t, `{ slow = drv "slow" "echo $$ > `+pidFile+`; exec sleep 600"; }`)
	b := &Builder{Flake: flake, Timeout: 3 * time.Second}
	_, err := b.Build(context.Background(), "x86_64-linux", []string{"slow"})
	var te *TimeoutError
	assert.Assert(t, errors.As(err, &te), "%v", err)
	assert.Equal(t, err.Error(), "nix build for x86_64-linux timed out after 3s; raise --timeout")
	assert.Assert(t, errors.Is(err, context.DeadlineExceeded))

	data, err := os.ReadFile(pidFile)
	assert.NilError(t, err, "the builder never started")
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	assert.NilError(t, err)
	deadline := time.Now().Add(20 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		assert.Assert(t, time.Now().Before(deadline), "builder %d still running", pid)
		time.Sleep(100 * time.Millisecond)
	}
}

// A timeout too short for Nix to start is a timeout too, not a missing
// Nix: locking and building both say so.
func TestTinyTimeout(t *testing.T) {
	testenv.Require(t, "nix")
	flake := writeFlake(t, `{ hello = drv "hello" "echo hi > $out"; }`)
	b := &Builder{Flake: flake, Timeout: time.Nanosecond}
	_, err := b.Lock(context.Background())
	var te *TimeoutError
	assert.Assert(t, errors.As(err, &te), "%v", err)
	assert.Equal(t, err.Error(), fmt.Sprintf("locking the nixpkgs flake %q timed out after 1ns; raise --timeout", flake))
	assert.Assert(t, errors.Is(err, context.DeadlineExceeded))

	_, err = b.Build(context.Background(), "x86_64-linux", []string{"hello"})
	assert.Assert(t, errors.As(err, &te), "%v", err)
	assert.Assert(t, !strings.Contains(err.Error(), "install Nix"), err)
	assert.ErrorContains(t, err, "timed out after 1ns; raise --timeout")
}

// Cancelling the caller's context stops Nix too, and is not reported as a
// timeout.
func TestBuildCancelled(t *testing.T) {
	testenv.Require(t, "nix")
	flake := writeFlake(t, `{ slow = drv "slow" "exec sleep 600"; }`)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(2*time.Second, cancel)
	_, err := (&Builder{Flake: flake, Timeout: time.Hour}).Build(ctx, "x86_64-linux", []string{"slow"})
	assert.Assert(t, errors.Is(err, context.Canceled), "%v", err)
	assert.ErrorContains(t, err, "nix build for x86_64-linux interrupted")
}

// Nix's progress reaches the log as it runs, line by line, prefixed with
// the system.
func TestBuildLog(t *testing.T) {
	testenv.Require(t, "nix")
	flake := writeFlake(t, `{ a = drv "logged-a" "echo from the builder; echo a > $out"; }`)
	var log bytes.Buffer
	b := &Builder{Flake: flake, Log: &log, PrintBuildLogs: true}
	for _, system := range []string{"x86_64-linux", "aarch64-linux"} {
		_, err := b.Build(context.Background(), system, []string{"a"})
		assert.NilError(t, err)
	}
	lines := strings.Split(strings.TrimSuffix(log.String(), "\n"), "\n")
	var building []string
	for _, l := range lines {
		assert.Assert(t, strings.HasPrefix(l, "[x86_64-linux] ") || strings.HasPrefix(l, "[aarch64-linux] ") || strings.HasPrefix(l, "[nix] "), "line %q", l)
		if strings.Contains(l, "building '/nix/store/") {
			building = append(building, l[:strings.Index(l, "]")+1])
		}
	}
	assert.DeepEqual(t, building, []string{"[x86_64-linux]", "[aarch64-linux]"})
	assert.Assert(t, is.Contains(log.String(), "from the builder"))
}

// Results are matched to attributes whatever order Nix lists them in,
// and two names for one derivation share its outputs.
func TestBuildMapsOutputsToAttrs(t *testing.T) {
	testenv.Require(t, "nix")
	flake := writeFlake(t, `rec {
		aaa = drv "zzz" "echo > $out";
		mmm = drv "mmm" "echo > $out";
		zzz = drv "aaa" "echo > $out";
		alias = aaa;
		nested.deeper.pkg = drv "nested" "echo > $out";
		multi = builtins.derivation {
			name = "multi"; system = aaa.system; builder = "/bin/sh"; nonce = aaa.nonce;
			outputs = [ "out" "doc" ];
			args = [ "-c" "echo $doc > $out; echo doc > $doc" ];
			PATH = "/usr/bin:/bin";
		};
	}`)
	b := &Builder{Flake: flake}
	attrs := []string{"zzz", "nested.deeper.pkg", "alias", "mmm", "aaa", "multi"}
	res, err := b.Build(context.Background(), "x86_64-linux", attrs)
	assert.NilError(t, err)
	want := map[string]string{"zzz": "-aaa", "nested.deeper.pkg": "-nested", "alias": "-zzz", "mmm": "-mmm", "aaa": "-zzz", "multi": "-multi"}
	for i, p := range res.Packages {
		assert.Equal(t, p.Attr, attrs[i])
		assert.Assert(t, strings.HasSuffix(p.Outputs["out"], want[p.Attr]), "%s: %v", p.Attr, p.Outputs)
		for _, path := range p.Paths() {
			_, err := os.Stat(path)
			assert.NilError(t, err)
		}
	}
	assert.DeepEqual(t, res.Packages[2].Outputs, res.Packages[4].Outputs)
	// Five distinct derivations; multi's doc output is in the closure
	// through its reference whether or not it is a default output.
	assert.Assert(t, len(res.Roots()) >= 5)
	assert.Assert(t, is.Contains(string(res.Closure), "-multi-doc"))
}

// One Builder may build several systems at once; it locks the flake once,
// so both builds use the same revision.
func TestBuildConcurrent(t *testing.T) {
	testenv.Require(t, "nix")
	var log bytes.Buffer
	b := &Builder{Flake: standIn(t), Log: &log}
	systems := []string{"x86_64-linux", "aarch64-linux"}
	results := make([]*Result, len(systems))
	errs := make([]error, len(systems))
	done := make(chan int)
	for i, s := range systems {
		go func() {
			results[i], errs[i] = b.Build(context.Background(), s, []string{"hello", "bashInteractive"})
			done <- i
		}()
	}
	<-done
	<-done
	for i := range systems {
		assert.NilError(t, errs[i])
		assert.Equal(t, results[i].System, systems[i])
	}
	assert.Equal(t, results[0].Flake, results[1].Flake)
	assert.Assert(t, results[0].Packages[0].Outputs["out"] != results[1].Packages[0].Outputs["out"])
}

// A flake in a git checkout with uncommitted changes cannot be locked; it
// is built from its copy in the store, changes included.
func TestBuildDirtyGitFlake(t *testing.T) {
	testenv.Require(t, "nix", "git")
	flake := strings.TrimPrefix(writeFlake(t, `{ a = drv "committed" "echo > $out"; }`), "path:")
	repo := filepath.Dir(flake)
	git := func(args ...string) {
		cmd := exec.Command("git", append([]string{"-C", repo, "-c", "user.name=t", "-c", "user.email=t@t"}, args...)...)
		out, err := cmd.CombinedOutput()
		assert.NilError(t, err, "git %v: %s", args, out)
	}
	git("init", "-q")
	git("add", ".")
	git("commit", "-q", "-m", "flake")
	data, err := os.ReadFile(filepath.Join(flake, "flake.nix"))
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(filepath.Join(flake, "flake.nix"), bytes.Replace(data, []byte(`"committed"`), []byte(`"uncommitted"`), 1), 0o644))

	var log bytes.Buffer
	b := &Builder{Flake: flake, Log: &log}
	res, err := b.Build(context.Background(), "x86_64-linux", []string{"a"})
	assert.NilError(t, err, log.String())
	assert.Assert(t, strings.HasSuffix(res.Packages[0].Outputs["out"], "-uncommitted"))
	assert.Assert(t, strings.HasPrefix(res.Flake, "path:/nix/store/"), res.Flake)
	assert.Assert(t, is.Contains(log.String(), "[nix] "+flake+" cannot be locked"))
}

// A path flake is locked by its content: touching its files (a fresh
// checkout does) changes Nix's lastModified but not the locked reference,
// which the image records; the reference still builds.
func TestLockPathIgnoresMtimes(t *testing.T) {
	testenv.Require(t, "nix")
	flake := writeFlake(t, `{ a = drv "touched" "echo > $out"; }`)
	lock := func() string {
		t.Helper()
		l, err := (&Builder{Flake: flake}).Lock(context.Background())
		assert.NilError(t, err)
		return l.URL
	}
	first := lock()
	later := time.Now().Add(time.Hour)
	assert.NilError(t, os.Chtimes(filepath.Join(strings.TrimPrefix(flake, "path:"), "flake.nix"), later, later))
	assert.Equal(t, lock(), first)
	assert.Assert(t, !strings.Contains(first, "lastModified"), first)
	assert.Assert(t, strings.Contains(first, "narHash="), first)

	res, err := (&Builder{Flake: first}).Build(context.Background(), "x86_64-linux", []string{"a"})
	assert.NilError(t, err)
	assert.Equal(t, res.Flake, first)
}

// With Caseless (serve's names, which clients send in lowercase), a name
// nixpkgs lacks is its one name equal but for case, and suggestions are
// lowercase; without it, names are exact.
func TestBuildCaseless(t *testing.T) {
	testenv.Require(t, "nix")
	b := &Builder{Flake: standIn(t), Caseless: true}
	res, err := b.Build(context.Background(), "x86_64-linux", []string{"python3packages.requests", "bashinteractive"})
	assert.NilError(t, err)
	assert.Equal(t, len(res.Packages), 2)
	assert.Equal(t, res.Packages[0].Attr, "python3packages.requests")
	assert.Check(t, strings.HasSuffix(res.Packages[0].Outputs["out"], "-python3-requests"), res.Packages[0].Outputs)
	assert.Check(t, strings.HasSuffix(res.Packages[1].Outputs["out"], "-bash-interactive"), res.Packages[1].Outputs)

	_, err = b.Build(context.Background(), "x86_64-linux", []string{"python3packages.reqests"})
	assert.Error(t, err, "not found in nixpkgs for x86_64-linux: python3packages.reqests (did you mean python3packages.requests?)")

	b = &Builder{Flake: standIn(t)}
	_, err = b.Build(context.Background(), "x86_64-linux", []string{"python3packages.requests"})
	assert.ErrorContains(t, err, "not found in nixpkgs for x86_64-linux: python3packages.requests")
}
