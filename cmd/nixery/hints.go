package main

import (
	"errors"
	"fmt"

	"github.com/nixery-action/nixery-action/pkg/registry"
)

// withHints adds to a library error the flags that change its outcome:
// the libraries describe what went wrong and leave naming options to us.
func withHints(err error) error {
	var re *registry.RegistryError
	if err == nil || !errors.As(err, &re) {
		return err
	}
	var hint string
	switch re.Kind {
	case registry.Unreachable:
		hint = "check --image"
	case registry.Unauthorized:
		if re.NoCredentials {
			hint = fmt.Sprintf("pass --username with --password-stdin (or NIXERY_PASSWORD), run docker login %s, or set GITHUB_TOKEN for ghcr.io", re.Registry)
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
