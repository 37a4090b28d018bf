//go:build integration

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// The two-platform build runs on each real Nix this machine has, from a
// store that was never used: the host's Debian Nix (2.8 on Debian 12) and
// Debian trixie's Nix 2.26 in the chroot scripts/trixie-nix.sh makes. A fresh
// store is where concurrent first Nix commands corrupt the database, so
// every run here starts from an empty /nix (and an empty HOME, so that no
// cache of Nix's names paths of another store) mounted in a mount
// namespace of its own: the machine's /nix is never touched.

// trixieDir is where scripts/setup.sh keeps the trixie chroot.
func trixieDir() string {
	if d := os.Getenv("NIXERY_TRIXIE_DIR"); d != "" {
		return d
	}
	return "/var/cache/nixery-action/trixie"
}

// requireRoot fails the test unless it can make mount namespaces.
func requireRoot(t *testing.T) {
	t.Helper()
	testenv.Require(t, "unshare")
	if os.Geteuid() != 0 {
		t.Fatal("this test mounts a fresh Nix store in a mount namespace: run it as root")
	}
}

// freshBuild is what each run checks: a two-platform build of the
// stand-in pushed to a registry on the host's loopback, from a fresh
// store, then again on the same store; podman on the host runs the image.
// spyLog is the host path of the log a nixSpy writes.
func freshBuild(t *testing.T, store, spyLog string, nixery func(args ...string) result) {
	t.Helper()
	host := testenv.StartRegistry(t)
	repo := host + "/e2e/fresh"
	args := []string{"build", "--platforms", "linux/amd64,linux/arm64", "--image", repo, "--json"}

	first := decodeResult(t, nixery(append(args, "--tags", "v1", "hello", "busybox")...))
	assert.Equal(t, len(first.Manifests), 2)
	firstAlone(t, spyLog)
	// The store was made by this build.
	for _, p := range []string{"var/nix/db/db.sqlite", "store"} {
		_, err := os.Stat(filepath.Join(store, p))
		assert.NilError(t, err, "the build did not use the fresh store")
	}
	built, err := filepath.Glob(filepath.Join(store, "store", "*-hello"))
	assert.NilError(t, err)
	assert.Equal(t, len(built), 2, "hello for both systems in the fresh store: %v", built)

	out := podmanRun(t, repo+":v1", "hello")
	assert.Equal(t, strings.TrimSpace(out), "Hello, world!")

	// The now-used store gives the same index, with nothing packed.
	again := decodeResult(t, nixery(append(args, "--tags", "v1", "busybox", "hello")...))
	assert.Equal(t, again.Digest, first.Digest)
	assert.Equal(t, again.Packed, 0)
}

// nixSpy writes, into dir, a program named nix that runs realNix and logs
// when each call starts and ends to logPath (as the program sees it), and
// its arguments to logPath.args.
func nixSpy(t *testing.T, dir, realNix, logPath string) {
	t.Helper()
	// nix --version, asked once beside the first command, touches no
	// store: it is not logged, so that the first call logged is the
	// first that opens the store. nix-store beside the spy is the real
	// one (the build's GC roots are held by nix-store --serve).
	script := fmt.Sprintf(`#!/bin/sh
[ "$1" = --version ] && exec %[2]q "$@"
echo "start $$ $(date +%%s%%N)" >> %[1]q
{ echo "call $$"; for a in "$@"; do printf '\t%%s\n' "$a"; done; } >> %[1]q.args
%[2]q "$@"
rc=$?
echo "end $$ $(date +%%s%%N)" >> %[1]q
exit $rc
`, logPath, realNix)
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "nix"), []byte(script), 0o755))
	assert.NilError(t, os.Symlink(filepath.Join(filepath.Dir(realNix), "nix-store"), filepath.Join(dir, "nix-store")))
}

// spyBuilds returns, from a nixSpy's log, the installables of each nix
// build call (its words after --).
func spyBuilds(t *testing.T, spyLog string) [][]string {
	t.Helper()
	data, err := os.ReadFile(spyLog + ".args")
	assert.NilError(t, err)
	var calls [][]string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "call ") {
			calls = append(calls, nil)
		} else if arg, ok := strings.CutPrefix(l, "\t"); ok && len(calls) > 0 {
			calls[len(calls)-1] = append(calls[len(calls)-1], arg)
		}
	}
	var builds [][]string
	for _, c := range calls {
		if i := slices.Index(c, "--"); i >= 0 && slices.Contains(c[:i], "build") {
			builds = append(builds, c[i+1:])
		}
	}
	assert.Assert(t, len(builds) > 0, "no nix build call logged:\n%s", data)
	return builds
}

// firstAlone checks, in a nixSpy's log, that the first Nix command ended
// before any other started: a fresh store's first command must run alone.
func firstAlone(t *testing.T, spyLog string) {
	t.Helper()
	data, err := os.ReadFile(spyLog)
	assert.NilError(t, err)
	type span struct{ start, end int64 }
	spans := map[string]*span{}
	var order []string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var what, pid string
		var at int64
		_, err := fmt.Sscan(l, &what, &pid, &at)
		assert.NilError(t, err, "log line %q", l)
		if spans[pid] == nil {
			spans[pid] = &span{}
			order = append(order, pid)
		}
		if what == "start" {
			spans[pid].start = at
		} else {
			spans[pid].end = at
		}
	}
	assert.Assert(t, len(order) >= 3, "only %d Nix calls logged", len(order))
	first := spans[order[0]]
	for _, pid := range order[1:] {
		assert.Assert(t, spans[pid].start >= first.end, "a Nix command started while the first one still ran:\n%s", data)
	}
}

// runLogged is runCmd, logging what a failed command said.
func runLogged(t *testing.T, cmd *exec.Cmd) result {
	t.Helper()
	r := runCmd(t, cmd)
	if r.code != 0 {
		t.Logf("%s exited with %d; stderr:\n%s", strings.Join(cmd.Args, " "), r.code, r.stderr)
	}
	return r
}

// TestFreshStoreHostNix runs the host's single-user Nix: Debian's nix-bin
// (2.8 on Debian 12). A Nix that lives in /nix (install-nix-action's)
// cannot run on an empty /nix, so Debian's, which scripts/setup.sh always
// installs, is used then.
func TestFreshStoreHostNix(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry", "podman", "runc")
	requireRoot(t)
	realNix, err := exec.LookPath("nix")
	assert.NilError(t, err)
	if resolved, err := filepath.EvalSymlinks(realNix); err != nil || strings.HasPrefix(resolved, "/nix/") {
		realNix = "/usr/bin/nix"
		if _, err := os.Stat(realNix); err != nil {
			t.Fatal("the Nix on PATH lives in /nix and there is no /usr/bin/nix: run scripts/setup.sh (it installs Debian's nix-bin)")
		}
	}
	t.Logf("%s: %s", realNix, strings.TrimSpace(testenv.Run(t, realNix, "--version")))

	work := t.TempDir()
	store, home, spy := filepath.Join(work, "nix"), filepath.Join(work, "home"), filepath.Join(work, "spy")
	for _, d := range []string{store, home, spy} {
		assert.NilError(t, os.Mkdir(d, 0o755))
	}
	spyLog := filepath.Join(spy, "calls.log")
	nixSpy(t, spy, realNix, spyLog)
	freshBuild(t, store, spyLog, func(args ...string) result {
		// The empty directory is mounted on /nix for nixery and the Nix
		// it runs, in a mount namespace that ends with them.
		nixArgs := append([]string{args[0], "--nixpkgs", standIn()}, args[1:]...)
		cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "--",
			"sh", "-ec", `mount --bind "$0" /nix; exec "$@"`, store, nixery}, nixArgs...)...)
		cmd.Env = append(os.Environ(), "NIX_CONFIG="+testenv.NixConfig, "HOME="+home, "XDG_CACHE_HOME="+home+"/.cache",
			"PATH="+spy+":"+os.Getenv("PATH"))
		return runLogged(t, cmd)
	})
	// Nix 2.8 cannot build a derivation's one output by its path: it
	// is given the flake's attributes (evaluating the flake again).
	for _, b := range spyBuilds(t, spyLog) {
		for _, inst := range b {
			assert.Check(t, strings.Contains(inst, "#legacyPackages."), "nix build was given %q", inst)
		}
	}
}

// requireTrixie fails the test unless scripts/setup.sh made the trixie
// chroot, and returns its directory.
func requireTrixie(t *testing.T) string {
	t.Helper()
	chroot := trixieDir()
	if _, err := os.Stat(filepath.Join(chroot, ".nixery-trixie")); err != nil {
		t.Fatalf("no trixie chroot in %s: run scripts/setup.sh (as root) first", chroot)
	}
	return chroot
}

// chrootDirs makes a test's directories to mount in the chroot: bin
// (holding this nixery), an empty store for /nix and a home for /root,
// all under work.
func chrootDirs(t *testing.T) (work, bin, store, home string) {
	t.Helper()
	work = t.TempDir()
	bin, store, home = filepath.Join(work, "bin"), filepath.Join(work, "nix"), filepath.Join(work, "home")
	for _, d := range []string{bin, store, home} {
		assert.NilError(t, os.Mkdir(d, 0o755))
	}
	copyFile(t, nixery, filepath.Join(bin, "nixery"))
	return work, bin, store, home
}

func TestFreshStoreNix226(t *testing.T) {
	testenv.Require(t, "docker-registry", "podman", "runc")
	requireRoot(t)
	chroot := requireTrixie(t)
	_, bin, store, home := chrootDirs(t)
	nixSpy(t, bin, "/usr/bin/nix", "/opt/nixery/calls.log")
	script := filepath.Join(repoRoot, "scripts", "trixie-nix.sh")
	inChroot := func(args ...string) result {
		cmd := exec.Command(script, append([]string{chroot, "run",
			"-b", bin + ":/opt/nixery", "-b", store + ":/nix", "-b", home + ":/root",
			"-b", filepath.Join(repoRoot, "testdata", "nixpkgs") + ":/src/nixpkgs",
			"--", "NIX_CONFIG=" + testenv.NixConfig, "PATH=/opt/nixery:/usr/bin:/bin"}, args...)...)
		return runLogged(t, cmd)
	}
	v := inChroot("/usr/bin/nix", "--version") // not the spy: its log is for the build
	assert.Equal(t, v.code, 0)
	assert.Assert(t, is.Contains(v.stdout, "2.26"), "the chroot's Nix is %s", v.stdout)

	freshBuild(t, store, filepath.Join(bin, "calls.log"), func(args ...string) result {
		return inChroot(append([]string{"/opt/nixery/nixery", args[0], "--nixpkgs", "path:/src/nixpkgs"}, args[1:]...)...)
	})

	// The team's app from its checkout, as this Nix locks and builds it.
	app := appCheckout(t)
	host := testenv.StartRegistry(t)
	git := "git -c user.email=ci@example.org -c user.name=CI -c safe.directory=/src/app"
	cmd := exec.Command(script, chroot, "run", "-b", bin+":/opt/nixery", "-b", store+":/nix", "-b", home+":/root",
		"-b", filepath.Join(repoRoot, "testdata", "nixpkgs")+":/src/nixpkgs", "-b", app+":/src/app",
		"--", "NIX_CONFIG="+testenv.NixConfig, "PATH=/opt/nixery:/usr/bin:/bin", "/bin/sh", "-ec",
		"cd /src/app && /usr/bin/nix flake lock --override-input nixpkgs path:/src/nixpkgs && "+git+" commit -q -a -m relock && "+
			"/opt/nixery/nixery build --nixpkgs path:/src/nixpkgs --platforms linux/amd64,linux/arm64 --user app --image "+host+"/e2e/app --tags v1 .#greet")
	r := runLogged(t, cmd)
	assert.Equal(t, r.code, 0, r.stderr)
	assert.Check(t, is.Contains(podmanRun(t, host+"/e2e/app:v1"), "greet: running as app (1000:1000) with HOME=/home/app"))

	// A package whose meta.outputsToInstall adds its man pages: this
	// Nix's own nix build would build both outputs, but an image holds
	// the default output alone, as one built by Nix 2.8 does.
	packagesOf := func(stdout string) []string { // of the first manifest's layers
		t.Helper()
		var built struct {
			Manifests []struct {
				Layers []struct{ Packages []string }
			}
		}
		assert.NilError(t, json.Unmarshal([]byte(stdout), &built), stdout)
		var packages []string
		for _, l := range built.Manifests[0].Layers {
			packages = append(packages, l.Packages...)
		}
		return packages
	}
	layerPackages := func(args ...string) []string {
		t.Helper()
		r := inChroot(append([]string{"/opt/nixery/nixery", "build", "--nixpkgs", "path:/src/nixpkgs", "--platforms", "linux/amd64", "--push=false", "--json"}, args...)...)
		assert.Equal(t, r.code, 0, r.stderr)
		return packagesOf(r.stdout)
	}
	packages := layerPackages("withman")
	assert.Check(t, is.Contains(packages, "withman-bin"))
	assert.Check(t, !slices.Contains(packages, "withman-man"), "the image holds the man output: %v", packages)
	// Both outputs asked for (curl curl.dev): this Nix reports them as two
	// results of one derivation, and the image holds both, as on Nix 2.8.
	packages = layerPackages("--no-default-packages", "withman", "withman.man")
	assert.Check(t, is.Contains(packages, "withman-bin"))
	assert.Check(t, is.Contains(packages, "withman-man"))

	// A flake with only the older defaultPackage output: a bare
	// reference names it, as this Nix's nix build takes it.
	old := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(old, "flake.nix"), []byte(`{
  outputs = { self }: {
    # The chroot's static busybox: the image runs it as its entrypoint.
    defaultPackage.x86_64-linux = builtins.derivation {
      name = "busybox"; system = "x86_64-linux"; builder = "/bin/sh"; PATH = "/usr/bin:/bin";
      args = [ "-eu" "-c" "mkdir -p $out/bin; cp /bin/busybox $out/bin/busybox" ];
    };
  };
}
`), 0o644))
	cmd = exec.Command(script, chroot, "run", "-b", bin+":/opt/nixery", "-b", store+":/nix", "-b", home+":/root",
		"-b", filepath.Join(repoRoot, "testdata", "nixpkgs")+":/src/nixpkgs", "-b", old+":/src/old",
		"--", "NIX_CONFIG="+testenv.NixConfig, "PATH=/opt/nixery:/usr/bin:/bin",
		"/opt/nixery/nixery", "build", "--nixpkgs", "path:/src/nixpkgs", "--platforms", "linux/amd64", "--image", host+"/e2e/old", "--tags", "v1", "path:/src/old")
	r = runLogged(t, cmd)
	assert.Equal(t, r.code, 0, r.stderr)
	assert.Check(t, is.Equal(strings.TrimSpace(podmanRun(t, host+"/e2e/old:v1", "echo", "old")), "old"))
	// Its full attribute path, which nix build finds among the flake's
	// outputs after packages and legacyPackages.
	cmd = exec.Command(script, chroot, "run", "-b", bin+":/opt/nixery", "-b", store+":/nix", "-b", home+":/root",
		"-b", filepath.Join(repoRoot, "testdata", "nixpkgs")+":/src/nixpkgs", "-b", old+":/src/old",
		"--", "NIX_CONFIG="+testenv.NixConfig, "PATH=/opt/nixery:/usr/bin:/bin",
		"/opt/nixery/nixery", "build", "--nixpkgs", "path:/src/nixpkgs", "--platforms", "linux/amd64", "--push=false", "--json", "path:/src/old#defaultPackage.x86_64-linux")
	r = runLogged(t, cmd)
	assert.Equal(t, r.code, 0, r.stderr)
	assert.Check(t, is.Contains(packagesOf(r.stdout), "busybox"))

	// This Nix builds the derivations the lookup found by their paths
	// (nixpkgs' packages, the app, the older defaultPackage), so each
	// flake is evaluated once per system, not a second time by nix build.
	byPath := regexp.MustCompile(`^/nix/store/[0-9a-z]{32}-[^/]+\.drv\^[A-Za-z0-9_-]+$`)
	builds := spyBuilds(t, filepath.Join(bin, "calls.log"))
	for _, b := range builds {
		for _, inst := range b {
			assert.Check(t, byPath.MatchString(inst), "nix build was given %q, not a derivation's output by path", inst)
		}
	}
	assert.Check(t, is.Contains(strings.Join(builds[len(builds)-1], " "), "-busybox.drv^out"), "the last build was %v", builds[len(builds)-1])

	// Nothing stays mounted under the chroot.
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	assert.NilError(t, err)
	assert.Assert(t, !strings.Contains(string(mounts), " "+chroot+"/"), "mounts left under %s", chroot)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	assert.NilError(t, err)
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	assert.NilError(t, err)
	_, err = io.Copy(dst, src)
	assert.NilError(t, err)
	assert.NilError(t, dst.Close())
}

// TestSameImageOnNix28AndNix226 builds the same git flake, from the same
// commit at the same path, with the same nixpkgs, on the host's Nix (2.8
// on Debian 12) and on Nix 2.26 in the chroot: the image (index and its
// annotations), the --json result and the SBOM and provenance are the
// same, although each Nix spells the locked references its own way
// (ref=master or ref=refs/heads/master; narHash=...%2f...= or .../...%3D).
func TestSameImageOnNix28AndNix226(t *testing.T) {
	testenv.Require(t, "nix", "git")
	requireRoot(t)
	chroot := requireTrixie(t)
	// The sources are under the temporary directory, which the chroot
	// sees at the same path: Nix records the path.
	tmp := os.TempDir()
	if _, err := os.Stat(filepath.Join(chroot, tmp)); err != nil {
		t.Fatalf("the chroot has no %s to mount the temporary directory on", tmp)
	}
	work, bin, store, home := chrootDirs(t)
	nixpkgs := filepath.Join(work, "nixpkgs")
	testenv.Run(t, "cp", "-r", filepath.Join(repoRoot, "testdata", "nixpkgs"), nixpkgs)
	app := filepath.Join(work, "app")
	assert.NilError(t, os.Mkdir(app, 0o755))
	// Built from the chroot's or the host's /bin/sh, the same derivation
	// and the same output: the image's layers do not depend on the Nix.
	assert.NilError(t, os.WriteFile(filepath.Join(app, "flake.nix"), []byte(`{
  outputs = { self }: {
    packages.x86_64-linux.default = builtins.derivation {
      name = "note"; system = "x86_64-linux"; builder = "/bin/sh"; PATH = "/usr/bin:/bin";
      args = [ "-c" "mkdir $out; echo same > $out/note" ];
    };
  };
}
`), 0o644))
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "flake.nix"}, {"commit", "-q", "-m", "note"}} {
		cmd := exec.Command("git", append([]string{"-c", "user.email=ci@example.org", "-c", "user.name=CI"}, args...)...)
		cmd.Dir = app
		out, err := cmd.CombinedOutput()
		assert.NilError(t, err, "git %v: %s", args, out)
	}
	build := []string{"build", "--nixpkgs", "path:" + nixpkgs, "--no-default-packages", "--platforms", "linux/amd64",
		"--cmd", "/note", "--json", "--output"}

	cmd := exec.Command(nixery, append(build, "oci:"+filepath.Join(work, "host"), ".")...)
	cmd.Dir = app
	cmd.Env = append(os.Environ(), "NIX_CONFIG="+testenv.NixConfig)
	host := runLogged(t, cmd)
	assert.Equal(t, host.code, 0)

	script := filepath.Join(repoRoot, "scripts", "trixie-nix.sh")
	cmd = exec.Command(script, chroot, "run", "-b", bin+":/opt/nixery", "-b", store+":/nix", "-b", home+":/root", "-b", tmp+":"+tmp,
		"--", "NIX_CONFIG="+testenv.NixConfig, "PATH=/opt/nixery:/usr/bin:/bin", "/bin/sh", "-ec",
		`cd "$0"; nix --version >&2; exec nixery "$@"`, app)
	cmd.Args = append(cmd.Args, append(build, "oci:"+filepath.Join(work, "chroot"), ".")...)
	trixie := runLogged(t, cmd)
	assert.Equal(t, trixie.code, 0)
	hostVersion := strings.TrimSpace(testenv.Run(t, "nix", "--version"))
	assert.Assert(t, is.Contains(trixie.stderr, "2.26"), "the chroot's Nix: %s", trixie.stderr)
	assert.Assert(t, !strings.Contains(hostVersion, "2.26"), "the host's Nix is %s too: nothing compared", hostVersion)

	type recorded struct {
		Digest       string          `json:"digest"`
		Nixpkgs      string          `json:"nixpkgs"`
		Installables json.RawMessage `json:"installables"`
		SBOMs        json.RawMessage `json:"sboms"`
	}
	var fromHost, fromTrixie recorded
	assert.NilError(t, json.Unmarshal([]byte(host.stdout), &fromHost), host.stdout)
	assert.NilError(t, json.Unmarshal([]byte(trixie.stdout), &fromTrixie), trixie.stdout)
	t.Logf("%s: %s", hostVersion, host.stdout)
	assert.Check(t, is.Equal(fromHost.Nixpkgs, fromTrixie.Nixpkgs))
	assert.Check(t, is.Equal(string(fromHost.Installables), string(fromTrixie.Installables)))
	assert.Check(t, is.Equal(string(fromHost.SBOMs), string(fromTrixie.SBOMs)))
	assert.Check(t, is.Equal(fromHost.Digest, fromTrixie.Digest), "the index differs")
	assert.Check(t, strings.HasPrefix(fromHost.Digest, "sha256:"), "no digest in %s", host.stdout)
}
