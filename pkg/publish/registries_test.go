package publish

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/pkg/cache"
	"github.com/nixery-action/nixery-action/pkg/registry"
)

func TestNewTargets(t *testing.T) {
	names := func(ts []Target) []string {
		var out []string
		for _, t := range ts {
			out = append(out, t.Repo.Name()+" "+strings.Join(t.TagNames(), ","))
		}
		return out
	}
	cases := []struct {
		name, image string
		tags        []string
		want        []string
		err         string
	}{
		{name: "bare tags only", image: "ghcr.io/me/app", tags: []string{"v1", "latest"},
			want: []string{"ghcr.io/me/app v1,latest"}},
		{name: "metadata-action's references", image: "",
			tags: []string{"ghcr.io/me/app:v1", "ghcr.io/me/app:latest", "docker.io/me/app:v1", "docker.io/me/app:latest"},
			want: []string{"ghcr.io/me/app v1,latest", "index.docker.io/me/app v1,latest"}},
		{name: "references to the image's repository are its tags", image: "ghcr.io/me/app:v0",
			tags: []string{"v1", "ghcr.io/me/app:v2", "quay.io/me/app:v1", "ghcr.io/me/app:v1"},
			want: []string{"ghcr.io/me/app v0,v1,v2", "quay.io/me/app v1"}},
		{name: "a reference without a tag is latest", tags: []string{"127.0.0.1:5000/a/b"},
			want: []string{"127.0.0.1:5000/a/b latest"}},
		{name: "repositories of one registry", image: "ghcr.io/me/app", tags: []string{"v1", "ghcr.io/me/mirror:v1"},
			want: []string{"ghcr.io/me/app v1", "ghcr.io/me/mirror v1"}},

		{name: "nothing to push to", tags: []string{"v1"}, err: "no image to push to: give --image"},
		{name: "a bare tag without an image", tags: []string{"ghcr.io/me/app:v1", "v2"}, err: `tag "v2" names no repository: give --image`},
		{name: "no image, no tags", err: "no image to push to"},
		{name: "a digest", image: "ghcr.io/me/app", tags: []string{"ghcr.io/me/app@sha256:" + strings.Repeat("0", 64)}, err: "not a digest"},
		{name: "no registry", image: "ghcr.io/me/app", tags: []string{"me/app:v1"}, err: "name the registry too"},
		{name: "a branch name", image: "ghcr.io/me/app", tags: []string{"v1", "feature/login"},
			err: `tag "feature/login" holds a '/', which a tag cannot (a branch name?): give docker/metadata-action's tags output, or replace '/' with '-' (feature-login)`},
		{name: "a branch name without an image", tags: []string{"feature/login"}, err: "holds a '/', which a tag cannot"},
		{name: "bad tag in a reference", image: "ghcr.io/me/app", tags: []string{"quay.io/me/app:.v1"}, err: `bad tag ".v1"`},
		{name: "a URL", image: "https://ghcr.io/me/tools", err: `--image "https://ghcr.io/me/tools": give REGISTRY/NAME, not a URL: drop "https://"`},
		{name: "a layout", image: "oci:out", err: `--image "oci:out": give REGISTRY/NAME, not a transport (oci:); --output takes oci:DIR`},
		{name: "a URL in the tags", tags: []string{"https://ghcr.io/me/app:v1"}, err: `--tags "https://ghcr.io/me/app:v1": give REGISTRY/NAME, not a URL: drop "https://"`},
		{name: "a skopeo reference in the tags", image: "ghcr.io/me/app", tags: []string{"v1", "docker://ghcr.io/me/app:v2"}, err: `drop "docker://"`},
		{name: "the cache record's tag", image: "ghcr.io/me/app", tags: []string{"quay.io/me/app:" + cache.RecordTag}, err: "cache record"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NewTargets(tc.image, tc.tags, false)
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			assert.NilError(t, err)
			assert.DeepEqual(t, names(got), tc.want)
		})
	}
}

// One index pushed to three repositories: two of one registry and one of
// another, which wants a login that the keychain (the docker config)
// gives. Each gets the same digest under its tags, both referrers and its
// cache record. (Mounting needs a registry that keeps blobs per
// repository: TestRegistriesMountOnRealRegistry checks it.)
func TestRegistriesPush(t *testing.T) {
	ctx := context.Background()
	first := memRegistry(t, nil)
	const user, password = "bob", "b0b-s3cret"
	second := memRegistry(t, basicAuth(user, password))

	targets, err := NewTargets(first+"/team/app", []string{"v1", first + "/team/mirror:v1", second + "/bob/app:v1", second + "/bob/app:stable"}, false)
	assert.NilError(t, err)
	assert.Equal(t, len(targets), 3)
	idx := cachedIndex(t, "registries")
	subject, imgs, wantReferrers := referrers(t, idx)
	o := Options{Options: registry.Options{Credentials: registry.Credentials{
		Keychain: staticKeychain{second, user, password},
	}}}
	dest := NewRegistries(targets, o)
	assert.NilError(t, dest.Check(ctx))
	res, err := dest.Write(ctx, idx, Attachments{subject.Digest: imgs})
	dest.Close()
	assert.NilError(t, err)
	digest, err := idx.Digest()
	assert.NilError(t, err)
	assert.Equal(t, res.Digest, digest.String())
	assert.Equal(t, res.Image, first+"/team/app")
	assert.DeepEqual(t, res.Repositories, []RepositoryResult{
		{Image: first + "/team/app", Reference: first + "/team/app@" + digest.String(), Tags: []string{"v1"}},
		{Image: first + "/team/mirror", Reference: first + "/team/mirror@" + digest.String(), Tags: []string{"v1"}},
		{Image: second + "/bob/app", Reference: second + "/bob/app@" + digest.String(), Tags: []string{"v1", "stable"}},
	})

	bob := remote.WithAuthFromKeychain(staticKeychain{second, user, password})
	for _, tg := range targets {
		for _, tag := range tg.Tags {
			d, err := remote.Head(tag, bob)
			assert.NilError(t, err, tag.String())
			assert.Equal(t, d.Digest, digest, tag.String())
		}
		listed, err := remote.Referrers(tg.Repo.Digest(subject.Digest.String()), bob)
		assert.NilError(t, err)
		im, err := listed.IndexManifest()
		assert.NilError(t, err)
		var got []string
		for _, m := range im.Manifests {
			got = append(got, m.Digest.String())
		}
		slices.Sort(got)
		assert.DeepEqual(t, got, wantReferrers)

		n, err := dest.RecordCache(ctx, idx, dest.ReadCacheRecord(ctx))
		assert.NilError(t, err)
		assert.Equal(t, n, 2)
		_, err = remote.Head(cache.RecordRef(tg.Repo), bob)
		assert.NilError(t, err, "the cache record of %s", tg.Repo)
	}

}

// --username/--password (Credentials.Registry) go to their registry only:
// the other registry of a multi-registry push never sees them.
func TestRegistriesPasswordScoped(t *testing.T) {
	const password = "only-for-the-first"
	var mu sync.Mutex
	var seen []string
	first := memRegistry(t, basicAuth("alice", password))
	second := memRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen = append(seen, r.Header.Get("Authorization"))
			mu.Unlock()
			h.ServeHTTP(w, r)
		})
	})
	targets, err := NewTargets(first+"/app", []string{"v1", second + "/app:v1"}, false)
	assert.NilError(t, err)
	o := Options{Options: registry.Options{Credentials: registry.Credentials{
		Username: "alice", Password: password, Registry: first, Keychain: noCreds,
	}}}
	dest := NewRegistries(targets, o)
	_, err = dest.Write(context.Background(), testIndex(t, "scoped", amd64), nil)
	dest.Close()
	assert.NilError(t, err)
	mu.Lock()
	defer mu.Unlock()
	assert.Assert(t, len(seen) > 0)
	for _, a := range seen {
		assert.Check(t, a == "", "the second registry was sent %q", a)
	}
}

// A repository that refuses the push is named, and gets no tag; the
// ones written before it are complete under theirs.
func TestRegistriesFailureNamesRepository(t *testing.T) {
	ctx := context.Background()
	good := memRegistry(t, nil)
	locked := memRegistry(t, basicAuth("carol", "right"))
	targets, err := NewTargets(good+"/app", []string{"v1", locked + "/app:v1"}, false)
	assert.NilError(t, err)
	o := Options{Options: registry.Options{Credentials: registry.Credentials{Keychain: staticKeychain{locked, "carol", "wrong"}}}}
	o.Backoff = fastBackoff
	dest := NewRegistries(targets, o)
	_, err = dest.Write(ctx, testIndex(t, "registries-fail", amd64), nil)
	dest.Close()
	assert.ErrorContains(t, err, "authentication failed for registry "+locked)
	_, err = remote.Head(targets[0].Tags[0])
	assert.NilError(t, err)
	tags, err := remote.List(targets[1].Repo, remote.WithAuthFromKeychain(staticKeychain{locked, "carol", "right"}))
	assert.Check(t, err != nil || len(tags) == 0, "tags %v", tags)
}
