//go:build integration

package publish

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
	"github.com/nixery-action/nixery-action/pkg/registry"
)

// These tests push to a real registry (the distribution registry Debian
// ships) and read the results back with clients we did not write.

type rawIndex struct {
	MediaType string `json:"mediaType"`
	Manifests []struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
		Platform  struct {
			OS           string `json:"os"`
			Architecture string `json:"architecture"`
			Variant      string `json:"variant"`
		} `json:"platform"`
	} `json:"manifests"`
	Annotations map[string]string `json:"annotations"`
}

func platformsOf(t *testing.T, raw string) []string {
	t.Helper()
	var idx rawIndex
	assert.NilError(t, json.Unmarshal([]byte(raw), &idx), raw)
	assert.Equal(t, idx.MediaType, "application/vnd.oci.image.index.v1+json")
	var ps []string
	for _, m := range idx.Manifests {
		assert.Equal(t, m.MediaType, "application/vnd.oci.image.manifest.v1+json")
		ps = append(ps, strings.TrimSuffix(m.Platform.OS+"/"+m.Platform.Architecture+"/"+m.Platform.Variant, "/"))
	}
	return ps
}

// skopeoTags lists a repository's tags; a repository never pushed has none.
func skopeoTags(t *testing.T, repo string, creds ...string) []string {
	t.Helper()
	args := []string{"list-tags", "--tls-verify=false"}
	if len(creds) == 2 {
		args = append(args, "--creds", creds[0]+":"+creds[1])
	}
	out, err := exec.Command("skopeo", append(args, "docker://"+repo)...).CombinedOutput()
	if err != nil {
		// skopeo 1.9 reports the registry's NAME_UNKNOWN as a bare 404.
		assert.Assert(t, is.Contains(string(out), "404"), "skopeo list-tags: %v\n%s", err, out)
		return nil
	}
	var list struct{ Tags []string }
	assert.NilError(t, json.Unmarshal(out, &list), string(out))
	return list.Tags
}

func TestRealRegistryPush(t *testing.T) {
	testenv.Require(t, "docker-registry", "skopeo")
	host := testenv.StartRegistry(t)
	repo := host + "/integration/hello"
	idx := testIndex(t, "real", arm64, amd64)

	res, err := Push(context.Background(), mustTarget(t, repo, "v1", "latest"), idx,
		Options{Options: registry.Options{Credentials: registry.Credentials{Keychain: noCreds}}})
	assert.NilError(t, err)
	for _, m := range res.Manifests {
		for _, l := range m.Layers {
			assert.Check(t, l.Uploaded, "%s layer %s", m.Platform, l.Digest)
		}
	}

	// skopeo reads one index with both platforms under each tag.
	for _, tag := range []string{"v1", "latest"} {
		raw := testenv.Run(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+repo+":"+tag)
		assert.DeepEqual(t, platformsOf(t, raw), []string{"linux/amd64", "linux/arm64/v8"})
	}
	// skopeo picks the arm64 image by platform and sees its config.
	var cfg struct {
		Architecture string
		Variant      string
		Config       struct{ Cmd, Env []string }
	}
	raw := testenv.Run(t, "skopeo", "inspect", "--tls-verify=false", "--override-arch", "arm64", "--config", "docker://"+repo+":v1")
	assert.NilError(t, json.Unmarshal([]byte(raw), &cfg), raw)
	assert.Equal(t, cfg.Architecture, "arm64")
	assert.Equal(t, cfg.Variant, "v8")
	assert.DeepEqual(t, cfg.Config.Cmd, []string{"hello"})

	// go-containerregistry pulls it back, every blob checked.
	ref, err := name.ParseReference(repo + ":v1")
	assert.NilError(t, err)
	pulled, err := remote.Index(ref)
	assert.NilError(t, err)
	d, _ := pulled.Digest()
	assert.Equal(t, d.String(), res.Digest)
	assert.NilError(t, validate.Index(pulled))

	// A second push sends nothing the registry has.
	again, err := Push(context.Background(), mustTarget(t, repo, "v2"), testIndex(t, "real", amd64, arm64),
		Options{Options: registry.Options{Credentials: registry.Credentials{Keychain: noCreds}}})
	assert.NilError(t, err)
	assert.Equal(t, again.Digest, res.Digest)
	checkNothingUploaded(t, again)
	assert.DeepEqual(t, skopeoTags(t, repo), []string{"latest", "v1", "v2"})
}

// TestRealRegistryFailures: each failure is one clear line, shows no
// password, and leaves no tag.
func TestRealRegistryFailures(t *testing.T) {
	testenv.Require(t, "docker-registry", "skopeo")
	host := testenv.StartRegistry(t)
	authHost, user, password := testenv.StartAuthRegistry(t)

	t.Run("bad reference", func(t *testing.T) {
		_, err := NewTarget(host+"/Bad Name", []string{"v1"}, false)
		assert.ErrorContains(t, err, `bad image reference "`+host+`/Bad Name"`)
		_, err = NewTarget(host+"/bad/tag", []string{"ok", "no good"}, false)
		assert.ErrorContains(t, err, `bad tag "no good"`)
		assert.Equal(t, len(skopeoTags(t, host+"/bad/tag")), 0)
	})

	t.Run("unreachable", func(t *testing.T) {
		_, err := Push(context.Background(), mustTarget(t, "127.0.0.1:1/bad/unreachable", "v1"), testIndex(t, "u", amd64),
			Options{Options: registry.Options{Credentials: registry.Credentials{Keychain: noCreds}, Backoff: fastBackoff}})
		assert.Error(t, err, "cannot reach registry 127.0.0.1:1: connection refused; check that the registry is running")
	})

	cases := []struct {
		name  string
		creds registry.Credentials
		want  string
	}{
		{"wrong password", registry.Credentials{Username: user, Password: password + "-wrong"},
			"authentication failed for registry " + authHost + " with the credentials from --username/--password"},
		{"no credentials", registry.Credentials{Keychain: noCreds},
			"authentication failed for registry " + authHost + ": no credentials found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			repo := authHost + "/bad/" + strings.ReplaceAll(tc.name, " ", "-")
			_, err := Push(context.Background(), mustTarget(t, repo, "v1"), testIndex(t, tc.name, amd64),
				Options{Options: registry.Options{Credentials: tc.creds, Backoff: fastBackoff}})
			assert.ErrorContains(t, err, tc.want)
			assert.Assert(t, !strings.Contains(err.Error(), password))
			assert.Equal(t, len(skopeoTags(t, repo, user, password)), 0)
		})
	}

	t.Run("right password", func(t *testing.T) {
		repo := authHost + "/good/auth"
		_, err := Push(context.Background(), mustTarget(t, repo, "v1"), testIndex(t, "auth", amd64),
			Options{Options: registry.Options{Credentials: registry.Credentials{Username: user, Password: password}}})
		assert.NilError(t, err)
		assert.DeepEqual(t, skopeoTags(t, repo, user, password), []string{"v1"})
		// The docker config route works too.
		_, err = Push(context.Background(), mustTarget(t, repo, "v2"), testIndex(t, "auth", amd64),
			Options{Options: registry.Options{Credentials: registry.Credentials{Keychain: staticKeychain{authHost, user, password}}}})
		assert.NilError(t, err)
		_, err = remote.Index(mustTarget(t, repo, "v2").Tags[0], remote.WithAuth(&authn.Basic{Username: user, Password: password}))
		assert.NilError(t, err)
	})
}

func TestLayoutWithClients(t *testing.T) {
	testenv.Require(t, "skopeo", "umoci")
	dir := filepath.Join(t.TempDir(), "image")
	idx := testIndex(t, "clients", amd64, arm64)
	_, err := Write(context.Background(), Output{Kind: OCILayout, Path: dir}, idx, WriteOptions{Tags: []string{"v1"}})
	assert.NilError(t, err)

	raw := testenv.Run(t, "skopeo", "inspect", "--raw", "oci:"+dir+":v1")
	assert.DeepEqual(t, platformsOf(t, raw), []string{"linux/amd64", "linux/arm64/v8"})

	// umoci unpacks one platform (it reads a layout whose tag names an
	// image manifest, so skopeo picks the platform first).
	single := filepath.Join(t.TempDir(), "single")
	testenv.Run(t, "skopeo", "copy", "--override-arch", "arm64", "oci:"+dir+":v1", "oci:"+single+":v1")
	bundle := filepath.Join(t.TempDir(), "bundle")
	testenv.Run(t, "umoci", "unpack", "--rootless", "--image", single+":v1", bundle)
	got, err := os.ReadFile(filepath.Join(bundle, "rootfs", "nix", "store", "bbb-hello", "bin", "hello"))
	assert.NilError(t, err)
	assert.Equal(t, string(got), "hello arm64clients")
}

func TestDockerArchiveWithSkopeo(t *testing.T) {
	testenv.Require(t, "skopeo")
	file := filepath.Join(t.TempDir(), "hello.tar")
	idx := testIndex(t, "archive", arm64)
	_, err := Write(context.Background(), Output{Kind: DockerArchive, Path: file}, idx,
		WriteOptions{Repository: "example.com/hello", Tags: []string{"v1"}})
	assert.NilError(t, err)

	var info struct {
		Architecture string
		Layers       []string
		Env          []string
	}
	raw := testenv.Run(t, "skopeo", "inspect", "docker-archive:"+file)
	assert.NilError(t, json.Unmarshal([]byte(raw), &info), raw)
	assert.Equal(t, info.Architecture, "arm64")
	assert.Assert(t, is.Contains(strings.Join(info.Env, " "), "SSL_CERT_FILE="))
	// A docker archive's layers are named by their uncompressed digests.
	cf, err := idx.Images()[0].ConfigFile()
	assert.NilError(t, err)
	var want []string
	for _, d := range cf.RootFS.DiffIDs {
		want = append(want, d.String())
	}
	assert.DeepEqual(t, info.Layers, want)

	raw = testenv.Run(t, "skopeo", "inspect", "docker-archive:"+file+":example.com/hello:v1")
	assert.Assert(t, is.Contains(raw, `"Architecture": "arm64"`))
}
