package main

import (
	"context"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/pkg/registry"
)

// NIX_CONFIG (which may hold access-tokens) and the runner's tokens leave
// the environment children inherit; Nix alone gets NIX_CONFIG back.
func TestHeldEnvReachesNixOnly(t *testing.T) {
	held := map[string]string{
		"NIX_CONFIG":                     "access-tokens = example.com=nixcfgtoken4",
		"ACTIONS_ID_TOKEN_REQUEST_TOKEN": "oidcreq5",
		"ACTIONS_ID_TOKEN_REQUEST_URL":   "https://oidc.example/6",
		"ACTIONS_RUNTIME_TOKEN":          "runtime7",
	}
	for k, v := range held {
		t.Setenv(k, v)
	}
	t.Cleanup(func() {
		for k, v := range heldEnv {
			if _, ours := held[k]; !ours {
				os.Setenv(k, v) // another secret of the test's environment
			}
		}
		clear(heldEnv)
	})
	holdSecrets()
	for k, v := range held {
		_, inherited := os.LookupEnv(k)
		assert.Check(t, !inherited, "%s is still in the environment children inherit", k)
		assert.Check(t, is.Equal(getenv(k), v))
	}
	nix := nixEnviron()
	assert.Check(t, slices.Contains(nix, "NIX_CONFIG="+held["NIX_CONFIG"]), "Nix's environment lacks NIX_CONFIG")
	assert.Check(t, !slices.Contains(nix, "ACTIONS_RUNTIME_TOKEN=runtime7"))
}

// A registry other than --image's gets none of --username's login: the
// hint says to log in to it through the docker config.
func TestHintForAnotherRegistrysLogin(t *testing.T) {
	other, err := name.NewRepository("127.0.0.1:5393/evil/x")
	assert.NilError(t, err)
	creds := registry.Credentials{Username: "bob", Password: "pw-of-image-registry", Registry: "127.0.0.1:5391", Keychain: authn.NewMultiKeychain()}
	l, err := creds.Login(context.Background(), other, false)
	assert.NilError(t, err)
	err = l.Explain(&transport.Error{StatusCode: http.StatusUnauthorized}, other)
	buildHas := func(f string) bool { return f == "username" || f == "image" }

	cli := withHints(err, buildHas, false)
	assert.Check(t, is.ErrorContains(cli, "; --username and its password are for the --image registry only: run docker login 127.0.0.1:5393"))
	assert.Check(t, !strings.Contains(cli.Error(), "pass --username"), cli.Error())
	action := withHints(err, actionInput, true)
	assert.Check(t, is.ErrorContains(action, "; the username and password inputs are for the image's registry only: log in to 127.0.0.1:5393 with docker/login-action"))
	assert.Check(t, !strings.Contains(action.Error(), "set the username and password inputs for"), action.Error())
}
