//go:build integration

package flaketest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// imageWorkflow is the workflow of the app's own repository that ships
// it: `.#greet` as user app, two platforms, tagged with the commit and
// with docker/metadata-action's tags, labels and annotations outputs as
// that action writes them (its tags name a second registry, logged in to
// through the docker config, as docker/login-action leaves it). The first
// step stands for actions/checkout, which needs the network.
const imageWorkflow = `name: image
on: push
permissions:
  contents: read
  packages: write
jobs:
  image:
    runs-on: ubuntu-latest
    env:
      NIX_CONFIG: |
        %NIX_CONFIG%
      DOCKER_CONFIG: %DOCKER_CONFIG%
    steps:
      - name: Check out
        run: cp -a "$APP_CHECKOUT/." .
        env:
          APP_CHECKOUT: %CHECKOUT%
      - name: Build and push the app
        id: image
        uses: org/nixery-action@v1
        with:
          packages: .#greet
          user: app
          platforms: linux/amd64,linux/arm64
          image: %IMAGE%
          tags: |
            ${{ github.sha }}
            %TAGS%
          labels: |
            %LABELS%
          annotations: |
            %ANNOTATIONS%
          nixpkgs: %NIXPKGS%
      - name: Show the digest
        run: echo "pushed $IMAGE"
        env:
          IMAGE: ${{ steps.image.outputs.image }}
      - name: Build amd64 by digest
        id: amd64
        uses: org/nixery-action@v1
        with:
          packages: .#greet
          platforms: linux/amd64
          image: %MERGED%
          push-by-digest: true
          nixpkgs: %NIXPKGS%
      - name: Build arm64 by digest
        id: arm64
        uses: org/nixery-action@v1
        with:
          packages: .#greet
          platforms: linux/arm64
          image: %MERGED%
          push-by-digest: true
          nixpkgs: %NIXPKGS%
      - name: Merge into both registries
        uses: org/nixery-action@v1
        with:
          image: %MERGED%
          tags: |
            %MERGED_TAGS%
          merge-digests: ${{ steps.amd64.outputs.digest }},${{ steps.arm64.outputs.digest }}
`

// TestActionUnderAct runs the action with nektos/act, a runner others
// wrote, on this machine, from a workflow in the app's own repository:
// act puts the action at …/org-nixery-action@v1 (a path with '@', which
// Nix does not read as a flake reference). The image it pushes runs the
// app as its user, on both platforms, tagged with the commit; the same
// index is in the second registry under metadata-action's tags, and the
// labels and annotations are where build-push-action would put them. The
// same workflow then builds each platform by digest and merges the two
// into both registries (metadata-action's tags), as a scaled-out one does.
func TestActionUnderAct(t *testing.T) {
	testenv.Require(t, "nix", "git", "go", "docker-registry", "skopeo")
	act := strings.TrimSpace(run(t, repoRoot(t), nil, filepath.Join(repoRoot(t), "scripts", "act-install.sh")))
	action := newFlake(t)
	host := testenv.StartRegistry(t)
	locked, user, password := testenv.StartAuthRegistry(t)
	dockerConfig := testenv.DockerConfig(t, locked, user, password)
	standIn := "path:" + filepath.Join(repoRoot(t), "testdata", "nixpkgs")
	block := func(lines []string) string { return strings.Join(lines, "\n            ") }

	// The app's repository: testdata/app, locked to the stand-in, with
	// its workflow, committed.
	app := filepath.Join(t.TempDir(), "greet")
	copyDir(t, filepath.Join(repoRoot(t), "testdata", "app"), app)
	workflow := strings.NewReplacer("%NIX_CONFIG%", strings.ReplaceAll(strings.TrimSpace(testenv.NixConfig), "\n", "\n        "), "%CHECKOUT%", app, "%IMAGE%", host+"/team/greet", "%NIXPKGS%", standIn,
		"%DOCKER_CONFIG%", dockerConfig, "%TAGS%", block(testenv.MetadataActionTags(host+"/team/greet", locked+"/team/greet")),
		"%LABELS%", block(testenv.MetadataActionLabels()), "%ANNOTATIONS%", block(testenv.MetadataActionAnnotations("manifest", "index")),
		"%MERGED%", host+"/team/merged", "%MERGED_TAGS%", block(testenv.MetadataActionTags(host+"/team/merged", locked+"/team/merged"))).Replace(imageWorkflow)
	var parsed map[string]any
	assert.NilError(t, yaml.Unmarshal([]byte(workflow), &parsed), workflow)
	assert.NilError(t, os.MkdirAll(filepath.Join(app, ".github", "workflows"), 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(app, ".github", "workflows", "image.yml"), []byte(workflow), 0o644))
	git := []string{"-c", "user.name=ci", "-c", "user.email=ci@localhost", "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main"}
	run(t, app, nil, "git", append(git, "init", "-q")...)
	run(t, app, nil, "git", "add", "-A")
	run(t, app, []string{"NIX_CONFIG=" + testenv.NixConfig}, "nix", "flake", "lock", "--override-input", "nixpkgs", standIn)
	run(t, app, nil, "git", "add", "-A")
	run(t, app, nil, "git", append(git, "commit", "-q", "-m", "greet")...)
	sha := strings.TrimSpace(run(t, app, nil, "git", "rev-parse", "HEAD"))

	// act clones every action a composite names, even one skipped by
	// if:; install-nix-action is mapped to a stand-in that is never run.
	installNix := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(installNix, "action.yml"),
		[]byte("name: stand-in\nruns:\n  using: composite\n  steps:\n    - run: exit 1\n      shell: bash\n"), 0o644))
	home := t.TempDir()
	out, stderr, err := runErr(app, []string{"HOME=" + home, "XDG_CACHE_HOME=" + filepath.Join(home, ".cache"), "TMPDIR=" + t.TempDir()},
		act, "push", "-W", ".github/workflows/image.yml", "-P", "ubuntu-latest=-self-hosted",
		"--local-repository", "org/nixery-action@v1="+action.dir,
		"--local-repository", "cachix/install-nix-action@13d8dd58da0234aa297dedd986986ccb8e7f3e24="+installNix)
	assert.NilError(t, err, "act: %s\n%s", tail(out, 60), tail(stderr, 20))
	assert.Check(t, strings.Contains(out, "building nixery with nix run"), "the action did not run its own flake: %s", tail(out, 30))
	// act ran the action from …/org-nixery-action@v1, which the action
	// copied for Nix.
	assert.Check(t, regexp.MustCompile(`Nix cannot read \S*/org-nixery-action@v1 as a flake reference; running the copy`).MatchString(out),
		"act did not put the action at a path with '@': %s", tail(out, 30))

	// The image, tagged with the commit, runs the app as its user.
	raw := run(t, "", nil, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+host+"/team/greet:"+sha)
	assert.Check(t, strings.Contains(out, "pushed "+host+"/team/greet@sha256:"), "the image output did not reach the next step: %s", tail(out, 30))
	var idx struct {
		Manifests []struct {
			Platform struct{ Architecture string } `json:"platform"`
		} `json:"manifests"`
		Annotations map[string]string `json:"annotations"`
	}
	assert.NilError(t, json.Unmarshal([]byte(raw), &idx))
	assert.Equal(t, len(idx.Manifests), 2)
	assert.Equal(t, idx.Annotations["org.nixery-action.flake..#greet.revision"], sha)
	// metadata-action's tags: the same index in both registries.
	for _, ref := range testenv.MetadataActionTags(host+"/team/greet", locked+"/team/greet") {
		got := run(t, "", nil, "skopeo", "inspect", "--tls-verify=false", "--creds", user+":"+password, "--raw", "docker://"+ref)
		assert.Check(t, got == raw, "%s holds another index", ref)
	}
	// Scaled out: each platform pushed by digest, then one merge puts the
	// same index, with the images and their SBOMs, in both registries.
	var merged string
	for _, ref := range testenv.MetadataActionTags(host+"/team/merged", locked+"/team/merged") {
		got := run(t, "", nil, "skopeo", "inspect", "--tls-verify=false", "--creds", user+":"+password, "--raw", "docker://"+ref)
		if merged == "" {
			merged = got
		}
		assert.Check(t, got == merged, "%s holds another index", ref)
	}
	var mi struct {
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	assert.NilError(t, json.Unmarshal([]byte(merged), &mi), merged)
	assert.Assert(t, is.Len(mi.Manifests, 2), merged)
	for _, m := range mi.Manifests {
		// The other registry has no referrers API: the fallback tag lists the SBOM.
		fallback := "docker://" + locked + "/team/merged:" + strings.Replace(m.Digest, ":", "-", 1)
		refs := run(t, "", nil, "skopeo", "inspect", "--tls-verify=false", "--creds", user+":"+password, "--raw", fallback)
		assert.Check(t, strings.Contains(refs, "application/vnd.cyclonedx+json"), "%s lists no SBOM: %s", fallback, refs)
	}

	want := map[string]string{}
	for _, l := range testenv.MetadataActionLabels() {
		k, v, _ := strings.Cut(l, "=")
		want[k] = v
	}
	for k, v := range want {
		assert.Check(t, is.Equal(idx.Annotations[k], v), "index annotation %s", k)
	}
	for _, arch := range []string{"amd64", "arm64"} {
		cfg := run(t, "", nil, "skopeo", "inspect", "--tls-verify=false", "--override-arch", arch, "--config", "docker://"+host+"/team/greet:"+sha)
		var c struct {
			Config struct {
				User       string
				Entrypoint []string
				Env        []string
				WorkingDir string
				Labels     map[string]string
			} `json:"config"`
		}
		assert.NilError(t, json.Unmarshal([]byte(cfg), &c), cfg)
		assert.Equal(t, c.Config.User, "1000:1000")
		assert.Assert(t, is.Len(c.Config.Entrypoint, 1))
		assert.Check(t, strings.HasSuffix(c.Config.Entrypoint[0], "-greet-1.0/bin/greet"), c.Config.Entrypoint[0])
		assert.Check(t, is.Contains(c.Config.Env, "HOME=/home/app"))
		assert.Check(t, is.Equal(c.Config.WorkingDir, "/home/app"), "the user works at home")
		for k, v := range want {
			assert.Check(t, is.Equal(c.Config.Labels[k], v), "%s label %s", arch, k)
		}
	}
}
