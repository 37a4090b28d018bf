package main

import (
	"os"
	"slices"
	"strings"
)

// secretEnv are the variables holding a secret nixery itself uses: the
// CLI's password and GitHub's token; and every input of the action
// (INPUT_*: the password, and flake references in nixpkgs or packages
// may hold tokens). main takes them out of the process's environment
// before anything runs, so that no child inherits them: Docker
// credential helpers, git and Nix (which gets an allow-list anyway)
// never need them, and a helper, or whatever it runs, may log its
// environment.
//
// NIX_CONFIG may hold access-tokens: it is held too, and given back to
// Nix alone (nixEnviron). The runner's ACTIONS_* tokens let whoever holds
// them request OIDC tokens or write to the workflow's caches and
// artifacts.
var secretEnv = []string{"NIXERY_PASSWORD", "GITHUB_TOKEN", "NIX_CONFIG",
	"ACTIONS_ID_TOKEN_REQUEST_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_RUNTIME_TOKEN"}

// secretPrefix starts the names of the action's inputs.
const secretPrefix = "INPUT_"

// heldEnv holds the values taken out by holdSecrets.
var heldEnv = map[string]string{}

// holdSecrets moves secretEnv from the environment into heldEnv. It runs
// once, first thing in main, before any goroutine or child exists.
func holdSecrets() {
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, secretPrefix) || slices.Contains(secretEnv, k) {
			heldEnv[k] = v
			os.Unsetenv(k)
		}
	}
}

// getenv is os.Getenv that also sees the secrets holdSecrets took out.
func getenv(k string) string {
	if v, ok := heldEnv[k]; ok {
		return v
	}
	return os.Getenv(k)
}

// nixEnviron is the environment pkg/nix takes Nix's from: this
// process's, with the NIX_CONFIG holdSecrets took out.
func nixEnviron() []string {
	env := os.Environ()
	if v, ok := heldEnv["NIX_CONFIG"]; ok {
		env = append(env, "NIX_CONFIG="+v)
	}
	return env
}
