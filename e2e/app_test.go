//go:build integration

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// appCheckout is a git checkout of the example application
// (testdata/app), its nixpkgs input locked to the stand-in, committed:
// what a team's repository is.
func appCheckout(t *testing.T) string {
	t.Helper()
	testenv.Require(t, "nix", "git")
	dir := filepath.Join(t.TempDir(), "app")
	testenv.Run(t, "cp", "-r", filepath.Join(repoRoot, "testdata", "app"), dir)
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.email=ci@example.org", "-c", "user.name=CI", "-c", "init.defaultBranch=main"}, args...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		assert.NilError(t, err, "git %v: %s", args, out)
	}
	git("init", "-q")
	git("add", "-A")
	lock := exec.Command("nix", "flake", "lock", "--override-input", "nixpkgs", standIn())
	lock.Dir = dir
	lock.Env = append(os.Environ(), "NIX_CONFIG="+testenv.NixConfig)
	out, err := lock.CombinedOutput()
	assert.NilError(t, err, "nix flake lock: %s", out)
	git("add", "-A")
	git("commit", "-q", "-m", "greet 1.0")
	return dir
}

// TestAppSameCommitAnywhere: one commit of the app, built from two
// checkouts in different directories, on the branch main, a branch
// feature and a detached HEAD, gives one index digest; neither the
// index's annotations nor the image's labels name a directory or a
// branch. --json and the provenance still record the full locked URL.
func TestAppSameCommitAnywhere(t *testing.T) {
	testenv.Require(t, "nix", "git", "docker-registry", "skopeo")
	first := appCheckout(t)
	second := filepath.Join(t.TempDir(), "elsewhere", "clone")
	testenv.Run(t, "git", "clone", "-q", first, second)
	testenv.Run(t, "git", "-C", second, "checkout", "-q", "-b", "feature")
	host := testenv.StartRegistry(t)
	repo := host + "/team/same"
	build := func(dir, tag string) appResult {
		t.Helper()
		r := runIn(t, dir, nil, "build", "--nixpkgs", standIn(), "--platforms", "linux/amd64",
			"--image", repo, "--tags", tag, "--json", ".#greet", "hello")
		assert.Equal(t, r.code, 0, r.stderr)
		var res appResult
		assert.NilError(t, json.Unmarshal([]byte(r.stdout), &res), r.stdout)
		return res
	}
	main := build(first, "main")
	feature := build(second, "feature")
	testenv.Run(t, "git", "-C", second, "checkout", "-q", "--detach")
	detached := build(second, "v1.0")
	assert.Equal(t, feature.Digest, main.Digest)
	assert.Equal(t, detached.Digest, main.Digest)
	// --json keeps where the flake was read from.
	assert.Check(t, strings.HasPrefix(main.Installables[0].Flake, "git+file://"+first), main.Installables[0].Flake)
	assert.Check(t, strings.HasPrefix(feature.Installables[0].Flake, "git+file://"+second), feature.Installables[0].Flake)

	rev := strings.TrimSpace(mustRunIn(t, first, "git", "rev-parse", "HEAD"))
	var idx struct {
		Annotations map[string]string `json:"annotations"`
	}
	assert.NilError(t, json.Unmarshal([]byte(testenv.Run(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+repo+":main")), &idx))
	assert.Equal(t, idx.Annotations["org.nixery-action.flake..#greet"], "git+file:.?rev="+rev)
	var cfg struct {
		Config struct {
			Labels map[string]string `json:"Labels"`
		} `json:"config"`
	}
	assert.NilError(t, json.Unmarshal([]byte(testenv.Run(t, "skopeo", "inspect", "--tls-verify=false", "--config", "docker://"+repo+":main")), &cfg))
	assert.Equal(t, cfg.Config.Labels["org.opencontainers.image.title"], ".#greet/hello")
	for what, m := range map[string]map[string]string{"annotation": idx.Annotations, "label": cfg.Config.Labels} {
		for k, v := range m {
			for _, bad := range []string{first, second, filepath.Dir(first), os.TempDir(), "ref=", "feature", "main"} {
				assert.Check(t, !strings.Contains(k+"="+v, bad), "%s %s=%s holds %q", what, k, v, bad)
			}
		}
	}
}

// runIn runs nixery in dir.
func runIn(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	wd, err := os.Getwd()
	assert.NilError(t, err)
	t.Chdir(dir)
	defer os.Chdir(wd)
	return run(t, env, args...)
}

// appResult is what --json says of installables.
type appResult struct {
	pushResult
	Installables []struct {
		Installable string `json:"installable"`
		Flake       string `json:"flake"`
		Revision    string `json:"revision"`
		MainProgram string `json:"mainProgram"`
		Entrypoint  bool   `json:"entrypoint"`
	} `json:"installables"`
	SBOMs []struct {
		Platform   string       `json:"platform"`
		Provenance sbomReferrer `json:"provenance"`
	} `json:"sboms"`
}

// TestAppFromCheckout is a team shipping its own software: from inside
// the app's checkout, `.#greet` with nixpkgs' hello, two platforms, as a
// non-root user, pushed to a registry. podman runs the app with no
// arguments, as that user, with a writable home; the flake's locked URL
// and revision are on the index, in --json, the SBOM and the provenance.
func TestAppFromCheckout(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry", "skopeo", "podman")
	dir := appCheckout(t)
	host := testenv.StartRegistry(t)
	sbomFile := filepath.Join(t.TempDir(), "sbom.cdx.json")
	r := runIn(t, dir, nil, "build", "--nixpkgs", standIn(), "--platforms", "linux/amd64,linux/arm64",
		"--image", host+"/team/greet", "--tags", "v1", "--user", "app", "--json", "--sbom-file", sbomFile, ".#greet", "hello")
	assert.Equal(t, r.code, 0, r.stderr)
	var res appResult
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &res), r.stdout)
	assert.Assert(t, is.Len(res.Installables, 1))
	app := res.Installables[0]
	rev := strings.TrimSpace(mustRunIn(t, dir, "git", "rev-parse", "HEAD"))
	assert.Equal(t, app.Installable, ".#greet")
	assert.Equal(t, app.Revision, rev)
	assert.Check(t, strings.HasPrefix(app.Flake, "git+file://"+dir) && strings.Contains(app.Flake, rev), app.Flake)
	assert.Equal(t, app.MainProgram, "greet")
	assert.Check(t, app.Entrypoint)
	// The app has a layer of its own, so a change to it alone leaves
	// the layers of what it shares with other images as they were.
	for _, m := range res.Manifests {
		for _, l := range m.Layers {
			for _, p := range l.Packages {
				if strings.HasPrefix(p, "greet-") {
					assert.Check(t, is.DeepEqual(l.Packages, []string{"greet-1.0"}), "%s: greet shares its layer: %v", m.Platform, l.Packages)
				}
			}
		}
	}

	// The same commit again: the same index, nothing packed.
	again := runIn(t, dir, nil, "build", "--nixpkgs", standIn(), "--platforms", "linux/amd64,linux/arm64",
		"--image", host+"/team/greet", "--tags", "v1", "--user", "app", "--json", ".#greet", "hello")
	var res2 appResult
	assert.NilError(t, json.Unmarshal([]byte(again.stdout), &res2), again.stderr)
	assert.Equal(t, res2.Digest, res.Digest)
	assert.Equal(t, res2.Packed, 0)

	// The index names the flake it was built from.
	var idx struct {
		Annotations map[string]string `json:"annotations"`
	}
	raw := testenv.Run(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+host+"/team/greet:v1")
	assert.NilError(t, json.Unmarshal([]byte(raw), &idx))
	assert.Equal(t, idx.Annotations["org.nixery-action.flake..#greet"], "git+file:.?rev="+rev)
	assert.Equal(t, idx.Annotations["org.nixery-action.flake..#greet.revision"], rev)

	// podman run with no arguments runs the app, as the user, at home.
	out := podmanRun(t, host+"/team/greet:v1")
	assert.Check(t, is.Contains(out, "greet: hello from the team's own software"))
	assert.Check(t, is.Contains(out, "greet: running as app (1000:1000) with HOME=/home/app"))
	assert.Check(t, is.Contains(out, "greet: /home/app is writable"))
	assert.Check(t, is.Contains(out, "greet: working in /home/app"), "--user without --workdir works at home")
	// Arguments go to the app.
	assert.Check(t, is.Contains(podmanRun(t, host+"/team/greet:v1", "--loud"), "greet: argument --loud"))

	// The SBOM lists the app, with its flake; the provenance resolves it.
	sbom, err := os.ReadFile(strings.Replace(sbomFile, ".cdx.json", ".linux-amd64.cdx.json", 1))
	assert.NilError(t, err)
	assert.Check(t, is.Contains(string(sbom), `"value": ".#greet"`))
	assert.Check(t, is.Contains(string(sbom), `"name": "nixery:flake:revision",`+"\n"+`          "value": "`+rev+`"`))
	prov := copyReferrer(t, host+"/team/greet", res.SBOMs[0].Provenance.Digest)
	var st struct {
		Predicate struct {
			BuildDefinition struct {
				ResolvedDependencies []struct {
					Name   string            `json:"name"`
					URI    string            `json:"uri"`
					Digest map[string]string `json:"digest"`
				} `json:"resolvedDependencies"`
			} `json:"buildDefinition"`
		} `json:"predicate"`
	}
	assert.NilError(t, json.Unmarshal(prov, &st))
	found := false
	for _, d := range st.Predicate.BuildDefinition.ResolvedDependencies {
		if d.Name == ".#greet" {
			found = true
			assert.Equal(t, d.URI, app.Flake)
			assert.Equal(t, d.Digest["gitCommit"], rev)
		}
	}
	assert.Check(t, found, "no resolved dependency for .#greet: %s", prov)
}

// mustRunIn runs a program in dir.
func mustRunIn(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	assert.NilError(t, err, "%s %v", name, args)
	return string(out)
}

// The bare reference (the default package) and a path: reference from
// elsewhere give the same app; numeric --user gets a named user.
func TestAppReferences(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry", "podman")
	dir := appCheckout(t)
	host := testenv.StartRegistry(t)
	r := runIn(t, dir, nil, "build", "--nixpkgs", standIn(), "--image", host+"/team/greet", "--tags", "bare", "--user", "1001:1002", ".")
	assert.Equal(t, r.code, 0, r.stderr)
	assert.Check(t, is.Contains(podmanRun(t, host+"/team/greet:bare"), "greet: running as user (1001:1002) with HOME=/home/user"))

	// From another directory, a path: reference, mixed with a plain
	// name and the shell: the app is still the entrypoint.
	r = run(t, nil, "build", "--nixpkgs", standIn(), "--image", host+"/team/greet", "--tags", "path", "--json", "path:"+dir+"#greet", "shell")
	decodeJSON(t, jsonSchema(t), r) // as docs/json.md describes it
	var res appResult
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &res), r.stderr)
	assert.Check(t, is.Len(res.Installables, 1))
	assert.Check(t, strings.HasPrefix(res.Installables[0].Flake, "path:"+dir), res.Installables[0].Flake)
	// Without --user: root, named by the image's /etc/passwd.
	assert.Check(t, is.Contains(podmanRun(t, host+"/team/greet:path"), "greet: running as root (0:0) with HOME=/root\ngreet: /root is writable\ngreet: working in /\n"))
}

// What is wrong with an app is one line: a system the flake lacks, a
// package it lacks (with the nearest), a malformed installable; the
// --user injection attempts are refused before any work.
func TestAppErrors(t *testing.T) {
	testenv.Require(t, "nix")
	dir := appCheckout(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--platforms", "linux/riscv64", "--no-default-packages", ".#greet"}, ".#greet: the flake . has no packages for riscv64-linux (it has packages for: aarch64-linux, x86_64-linux)"},
		{[]string{".#gret"}, ".#gret: the flake . has no package gret for x86_64-linux (did you mean greet?) (it has packages for: aarch64-linux, x86_64-linux)"},
		{[]string{".#"}, "invalid flake installable `.#`: nothing after '#'"},
		{[]string{"#greet"}, "invalid flake installable `#greet`: no flake before '#'"},
		{[]string{"--user", "app:x:0:0::/:/bin/sh", ".#greet"}, `--user "app:x:0:0::/:/bin/sh": too many ':'`},
		{[]string{"--user", "app\nroot:x:0:0:root:/root:/bin/sh", ".#greet"}, "it holds a line break or control character"},
		{[]string{".#site"}, ".#site has no program bin/site for x86_64-linux (its meta.mainProgram, else its name): pass --entrypoint or --cmd"},
		{[]string{"--platforms", "linux/arm64", ".#packages.x86_64-linux.greet"}, ".#packages.x86_64-linux.greet names a package of x86_64-linux, but the image is for aarch64-linux: name it .#greet"},
	} {
		args := append([]string{"build", "--nixpkgs", standIn(), "--push=false"}, tc.args...)
		r := runIn(t, dir, nil, args...)
		assert.Check(t, r.code != 0, "%v succeeded", tc.args)
		assert.Check(t, is.Contains(errorLine(r.stderr), tc.want), "%v: %s", tc.args, r.stderr)
		assert.Check(t, !strings.Contains(r.stderr, "goroutine"), r.stderr)
	}

	// The full attribute path, as nix build takes it, for its system.
	r := runIn(t, dir, nil, "build", "--nixpkgs", standIn(), "--push=false", ".#packages.x86_64-linux.greet")
	assert.Check(t, is.Equal(r.code, 0), r.stderr)

	// A flake that fails to evaluate: Nix's own error, shown once.
	broken := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(broken, "flake.nix"),
		[]byte(`{ outputs = { self }: { packages.x86_64-linux.app = throw "the app is broken"; }; }`), 0o644))
	r = run(t, nil, "build", "--nixpkgs", standIn(), "--push=false", "path:"+broken+"#app", "hello")
	assert.Check(t, r.code != 0)
	assert.Check(t, is.Contains(errorLine(r.stderr), "evaluating the flake path:"+broken+" for x86_64-linux failed: the app is broken"), r.stderr)
	assert.Check(t, strings.Count(r.stderr, "error: the app is broken") == 1, r.stderr)
}

// Built to a layout, where no repository names the image, the SBOM is
// named after what was asked for, with a local flake's directory hidden
// as in the image's title.
func TestAppSBOMNameHidesDirectory(t *testing.T) {
	testenv.Require(t, "nix", "git")
	dir := appCheckout(t)
	out := t.TempDir()
	file := filepath.Join(out, "sbom.cdx.json")
	r := run(t, nil, "build", "--nixpkgs", standIn(), "--platforms", "linux/amd64",
		"--output", "oci:"+filepath.Join(out, "image"), "--sbom-file", file, "path:"+dir+"#greet", "hello")
	assert.Equal(t, r.code, 0, r.stderr)
	data, err := os.ReadFile(file)
	assert.NilError(t, err)
	var bom struct {
		Metadata struct {
			Component struct{ Name string }
		}
	}
	assert.NilError(t, json.Unmarshal(data, &bom))
	assert.Equal(t, bom.Metadata.Component.Name, "hello/path:.../app#greet")
}
