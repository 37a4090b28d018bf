package image

import (
	"testing"

	"gotest.tools/v3/assert"
)

// metadataActionLabels are docker/metadata-action's labels for a push to
// a branch (its __tests__/meta.test.ts, case event_push.env), and
// metadataActionAnnotations its annotations output for them with
// DOCKER_METADATA_ANNOTATIONS_LEVELS=manifest,index: each label behind
// each level, "level:label", as its src/main.ts writes them.
var metadataActionLabels = []string{
	"org.opencontainers.image.title=Hello-World",
	"org.opencontainers.image.description=This your first repo!",
	"org.opencontainers.image.url=https://github.com/octocat/Hello-World",
	"org.opencontainers.image.source=https://github.com/octocat/Hello-World.git",
	"org.opencontainers.image.version=dev",
	"org.opencontainers.image.created=2020-01-10T00:30:00.000Z",
	"org.opencontainers.image.revision=90dd6032fac8bda1b6c4436a2e65de27961ed071",
	"org.opencontainers.image.licenses=MIT",
}

func metadataActionAnnotations(levels ...string) []string {
	var out []string
	for _, l := range levels {
		for _, label := range metadataActionLabels {
			out = append(out, l+":"+label)
		}
	}
	return out
}

func TestParseAnnotations(t *testing.T) {
	got, err := ParseAnnotations(metadataActionAnnotations("manifest", "index"))
	assert.NilError(t, err)
	assert.Equal(t, len(got[LevelManifest]), 8)
	assert.Equal(t, len(got[LevelIndex]), 8)
	assert.Equal(t, got[LevelIndex]["org.opencontainers.image.version"], "dev")
	assert.Equal(t, got[LevelManifest]["org.opencontainers.image.description"], "This your first repo!")

	// Its labels output, without levels: the default level's.
	got, err = ParseAnnotations(metadataActionLabels)
	assert.NilError(t, err)
	assert.Equal(t, len(got[DefaultAnnotationLevel]), 8)

	got, err = ParseAnnotations([]string{
		"plain=default level",
		"index,manifest:both=1",
		"manifest-descriptor:d=2",
		"index-descriptor:i=3",
		"com.example:key=a colon in the key",
		"",
	})
	assert.NilError(t, err)
	assert.DeepEqual(t, got, LeveledAnnotations{
		LevelManifest:           {"plain": "default level", "both": "1", "com.example:key": "a colon in the key"},
		LevelIndex:              {"both": "1"},
		LevelManifestDescriptor: {"d": "2"},
		LevelIndexDescriptor:    {"i": "3"},
	})

	for line, want := range map[string]string{
		"manfest:k=v":               `unknown level "manfest"`,
		"manifest[linux/amd64]:k=v": "levels for one platform",
		"index:novalue":             "is not [LEVEL:]KEY=VALUE",
	} {
		_, err := ParseAnnotations([]string{line})
		assert.ErrorContains(t, err, want, line)
	}
}
