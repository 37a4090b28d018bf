package registry

import (
	"context"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"gotest.tools/v3/assert"
)

var noCreds = authn.NewMultiKeychain()

func TestGitHubKeychain(t *testing.T) {
	ghcr, _ := name.NewRepository("ghcr.io/o/n")
	other, _ := name.NewRepository("docker.io/o/n")
	cases := []struct {
		name        string
		kc          authn.Keychain
		repo        name.Repository
		user, token string // "" for anonymous
	}{
		{"ghcr with actor", GitHubKeychain("tok", "octocat"), ghcr, "octocat", "tok"},
		{"ghcr without actor", GitHubKeychain("tok", ""), ghcr, "token", "tok"},
		{"no token", GitHubKeychain("", "octocat"), ghcr, "", ""},
		{"other registry", GitHubKeychain("tok", "octocat"), other, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			auth, err := tc.kc.Resolve(tc.repo)
			assert.NilError(t, err)
			if tc.user == "" {
				assert.Equal(t, auth, authn.Anonymous)
				return
			}
			cfg, err := auth.Authorization()
			assert.NilError(t, err)
			assert.Equal(t, cfg.Username, tc.user)
			assert.Equal(t, cfg.Password, tc.token)
		})
	}

	// The docker config comes first; GITHUB_TOKEN fills in for ghcr.io.
	l, err := Credentials{Keychain: noCreds, GitHubToken: "tok"}.login(context.Background(), ghcr, true)
	assert.NilError(t, err)
	assert.Equal(t, l.source, "GITHUB_TOKEN")
	l, err = Credentials{Keychain: ScopedKeychain("ghcr.io", "u", "p"), GitHubToken: "tok"}.login(context.Background(), ghcr, true)
	assert.NilError(t, err)
	assert.Equal(t, l.source, "the docker config")
	l, err = Credentials{Keychain: noCreds, GitHubToken: "tok"}.login(context.Background(), other, true)
	assert.NilError(t, err)
	assert.Equal(t, l.source, "")
}

func TestRedact(t *testing.T) {
	err := redact(errWithText("token abcdef leaked, and abc"), []string{"abcdef", "abc", ""})
	assert.Error(t, err, "token *** leaked, and abc")
}

type errWithText string

func (e errWithText) Error() string { return string(e) }
