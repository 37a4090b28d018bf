package image

import (
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestSourceDateEpoch(t *testing.T) {
	cases := []struct {
		value string
		want  time.Time
		err   string
	}{
		{value: "", want: time.Unix(0, 0)},
		{value: "1700000000", want: time.Unix(1700000000, 0)},
		{value: " 1700000000\n", want: time.Unix(1700000000, 0)},
		{value: "0", want: time.Unix(0, 0)},
		{value: "abc", err: `SOURCE_DATE_EPOCH="abc" is not a whole number of seconds`},
		{value: "1.5", err: `SOURCE_DATE_EPOCH="1.5"`},
		{value: "-1", err: `SOURCE_DATE_EPOCH="-1"`},
		{value: "99999999999999", err: `SOURCE_DATE_EPOCH="99999999999999"`},
	}
	for _, tc := range cases {
		t.Run(tc.value, func(t *testing.T) {
			got, err := SourceDateEpoch(mapEnv(map[string]string{"SOURCE_DATE_EPOCH": tc.value}))
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			assert.NilError(t, err)
			assert.Assert(t, got.Equal(tc.want), got)
			assert.Equal(t, got.Location(), time.UTC)
		})
	}
}

func TestFormatCreated(t *testing.T) {
	assert.Equal(t, FormatCreated(time.Time{}), "1970-01-01T00:00:00Z")
	assert.Equal(t, FormatCreated(time.Unix(1700000000, 0).In(time.FixedZone("X", 3600))), "2023-11-14T22:13:20Z")
}

func TestGitHubAnnotations(t *testing.T) {
	sha := strings.Repeat("ab", 20)
	cases := []struct {
		name string
		env  map[string]string
		want map[string]string
	}{
		{"outside Actions", nil, map[string]string{}},
		{
			"github.com",
			map[string]string{"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "o/r", "GITHUB_SHA": sha},
			map[string]string{AnnotationSource: "https://github.com/o/r", AnnotationRevision: sha},
		},
		{
			"enterprise server with trailing slash",
			map[string]string{"GITHUB_SERVER_URL": "https://ghe.example.com/", "GITHUB_REPOSITORY": "o/r"},
			map[string]string{AnnotationSource: "https://ghe.example.com/o/r"},
		},
		{
			"no server URL",
			map[string]string{"GITHUB_REPOSITORY": "o/r", "GITHUB_SHA": sha},
			map[string]string{AnnotationSource: "https://github.com/o/r", AnnotationRevision: sha},
		},
		{
			// nektos/act sets the repository from the git remote: here a
			// clone's directory, which makes no URL.
			"a directory for a repository",
			map[string]string{"GITHUB_REPOSITORY": "/tmp/clone/app", "GITHUB_SHA": sha},
			map[string]string{AnnotationRevision: sha},
		},
		{
			"a server URL that is not one",
			map[string]string{"GITHUB_SERVER_URL": "ftp://x/y?z", "GITHUB_REPOSITORY": "o/r", "GITHUB_SHA": "not-a-commit"},
			map[string]string{},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.DeepEqual(t, GitHubAnnotations(mapEnv(tc.env)), tc.want)
		})
	}
}
