package main

import "os"

// secretEnv are the variables holding a secret nixery itself uses: the
// action's password input, the CLI's password and GitHub's token. main
// takes them out of the process's environment before anything runs, so
// that no child inherits them: Docker credential helpers, git and Nix
// (which gets an allow-list anyway) never need them, and a helper, or
// whatever it runs, may log its environment.
var secretEnv = []string{"INPUT_PASSWORD", "NIXERY_PASSWORD", "GITHUB_TOKEN"}

// heldEnv holds the values taken out by holdSecrets.
var heldEnv = map[string]string{}

// holdSecrets moves secretEnv from the environment into heldEnv. It runs
// once, first thing in main, before any goroutine or child exists.
func holdSecrets() {
	for _, k := range secretEnv {
		if v, ok := os.LookupEnv(k); ok {
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
