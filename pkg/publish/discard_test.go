package publish

import (
	"context"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// A build not pushed describes where it would have gone as a push does:
// every repository its tags name, each with its own tags, the first's
// as the image; none pinned by a reference, since nothing was pushed.
func TestDiscardEveryRepository(t *testing.T) {
	targets, err := NewTargets("reg.example/team/app", []string{"v1", "reg.example/team/mirror:v1", "other.example/bob/app:v2", "other.example/bob/app:latest"}, false)
	assert.NilError(t, err)
	idx := testIndex(t, "discard", v1.Platform{OS: "linux", Architecture: "amd64"})
	d := Discard{Targets: targets}
	assert.Equal(t, d.ImageName(), "reg.example/team/app")

	res, err := d.Write(context.Background(), idx, nil)
	assert.NilError(t, err)
	digest, err := idx.Digest()
	assert.NilError(t, err)
	assert.Equal(t, res.Digest, digest.String())
	assert.Check(t, !res.Pushed)
	assert.Equal(t, res.Reference, "")
	assert.Equal(t, res.Image, "reg.example/team/app")
	assert.DeepEqual(t, res.Tags, []string{"v1"})
	assert.DeepEqual(t, res.Repositories, []RepositoryResult{
		{Image: "reg.example/team/app", Tags: []string{"v1"}},
		{Image: "reg.example/team/mirror", Tags: []string{"v1"}},
		{Image: "other.example/bob/app", Tags: []string{"v2", "latest"}},
	})

	// One repository: no list, as for a push to one.
	res, err = Discard{Targets: targets[:1]}.Write(context.Background(), idx, nil)
	assert.NilError(t, err)
	assert.Check(t, is.Nil(res.Repositories))
	assert.Equal(t, res.Image, "reg.example/team/app")

	// No repository (--push=false without --image): the index only.
	res, err = Discard{}.Write(context.Background(), idx, nil)
	assert.NilError(t, err)
	assert.Equal(t, res.Image, "")
	assert.DeepEqual(t, res.Tags, []string{})
	assert.Check(t, is.Nil(res.Repositories))
}
