package build

import (
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

// SOURCE_DATE_EPOCH wins; outside a workflow, or in one with no commit to
// read, the time is the epoch's default.
func TestCreatedTime(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	got, err := CreatedTime(env(map[string]string{"SOURCE_DATE_EPOCH": "1700000000", "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": t.TempDir()}))
	assert.NilError(t, err)
	assert.Equal(t, got, time.Unix(1700000000, 0).UTC())

	none, err := CreatedTime(env(nil))
	assert.NilError(t, err)
	noCommit, err := CreatedTime(env(map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": t.TempDir(), "GITHUB_SHA": "--bad"}))
	assert.NilError(t, err)
	assert.Equal(t, noCommit, none)

	_, err = CreatedTime(env(map[string]string{"SOURCE_DATE_EPOCH": "soon"}))
	assert.ErrorContains(t, err, "SOURCE_DATE_EPOCH")
}
