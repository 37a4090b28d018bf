package main

import (
	"errors"
	"fmt"

	"github.com/nixery-action/nixery-action/pkg/registry"
)

// withHints adds to a library error the flags that change its outcome:
// the libraries describe what went wrong and leave naming options to us.
// has tells which flags the command has.
func withHints(err error, has func(flag string) bool) error {
	var re *registry.RegistryError
	if err == nil || !errors.As(err, &re) {
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
	case registry.Unauthorized:
		switch {
		case !re.NoCredentials:
		case has("username"):
			hint = fmt.Sprintf("pass --username with --password-stdin (or NIXERY_PASSWORD), run docker login %s, or set GITHUB_TOKEN for ghcr.io", re.Registry)
		default:
			hint = fmt.Sprintf("run docker login %s (the docker config is read)", re.Registry)
		}
	case registry.Untrusted:
		hint = "or pass --insecure for a plain-HTTP registry"
	case registry.PlainHTTP:
		hint = "pass --insecure to allow that"
	}
	if hint == "" {
		return err
	}
	return fmt.Errorf("%w; %s", err, hint)
}
