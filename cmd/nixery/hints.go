package main

import (
	"errors"
	"fmt"

	"github.com/nixery-action/nixery-action/pkg/nix"
	"github.com/nixery-action/nixery-action/pkg/registry"
)

// withHints adds to a library error the flags that change its outcome:
// the libraries describe what went wrong and leave naming options to us.
// has tells which flags the command has; action words the hints as the
// action's inputs. An error gets its hints once: action mode adds them,
// and main, which adds them for every command, then finds them there.
func withHints(err error, has func(flag string) bool, action bool) error {
	var re *registry.RegistryError
	var ne *nix.CommandError
	var done *hintedError
	if err == nil || errors.As(err, &done) {
		return err
	}
	if errors.As(err, &ne) && ne.NoBuilderFor != "" && action {
		// A runner of the other architecture is a job away.
		return &hintedError{fmt.Errorf("%w; in a workflow, build each platform in a job of its own on a runner of that architecture (e.g. runs-on: ubuntu-24.04-arm with platforms: linux/arm64) and join them with merge-digests", err)}
	}
	if !errors.As(err, &re) {
		return err
	}
	var hint string
	switch re.Kind {
	case registry.Unreachable:
		switch {
		case has("storage"):
			hint = "check --storage"
		case has("image"):
			hint = "check --image"
		}
	case registry.NoAnswer:
		hint = "check any proxy or firewall in between"
		if has("image") {
			hint = "check --image, and any proxy or firewall in between"
		}
		if has("registry-timeout") {
			hint += " (the wait is --registry-timeout, at most " + registry.CheckTimeout.String() + ")"
		}
	case registry.Unauthorized:
		switch {
		case !re.NoCredentials:
		// The user name and password given are the image registry's:
		// another registry's login is the docker config's.
		case re.LoginElsewhere && action:
			hint = fmt.Sprintf("the username and password inputs are for the image's registry only: log in to %s with docker/login-action before this step", re.Registry)
		case re.LoginElsewhere:
			hint = fmt.Sprintf("--username and its password are for the --image registry only: run docker login %s (the docker config is read)", re.Registry)
		case action:
			hint = fmt.Sprintf("set the username and password inputs for %s, or log in with docker/login-action before this step", re.Registry)
		case has("username"):
			hint = fmt.Sprintf("pass --username with --password-stdin (or NIXERY_PASSWORD), run docker login %s, or set GITHUB_TOKEN for ghcr.io", re.Registry)
		default:
			hint = fmt.Sprintf("run docker login %s (the docker config is read)", re.Registry)
		}
	case registry.Denied:
		switch {
		case !re.PullRequestToken:
		case action:
			hint = "build pull requests without pushing: push: ${{ github.event_name != 'pull_request' }}"
		case has("push"):
			hint = "build pull requests without pushing (--push=false)"
		}
	case registry.Untrusted:
		hint = "or pass --insecure for a plain-HTTP registry"
		if action {
			hint = "or set insecure: true for a plain-HTTP registry"
		}
	case registry.PlainHTTP:
		hint = "pass --insecure to allow that"
		if action {
			hint = "set insecure: true to allow that"
		}
	}
	if hint == "" {
		return err
	}
	return &hintedError{fmt.Errorf("%w; %s", err, hint)}
}

// hintedError is an error withHints added its hint to.
type hintedError struct{ error }

func (e *hintedError) Unwrap() error { return e.error }
