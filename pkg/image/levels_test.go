package image

import (
	"testing"

	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

func TestParseAnnotations(t *testing.T) {
	got, err := ParseAnnotations(testenv.MetadataActionAnnotations("manifest", "index"))
	assert.NilError(t, err)
	assert.Equal(t, len(got[LevelManifest]), 8)
	assert.Equal(t, len(got[LevelIndex]), 8)
	assert.Equal(t, got[LevelIndex]["org.opencontainers.image.version"], "dev")
	assert.Equal(t, got[LevelManifest]["org.opencontainers.image.description"], "This your first repo!")

	// Its labels output, without levels: the default level's.
	got, err = ParseAnnotations(testenv.MetadataActionLabels())
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
