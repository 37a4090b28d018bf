package main

import (
	"errors"
	"fmt"

	"github.com/nixery-action/nixery-action/pkg/push"
)

// withHints adds to a library error the flags that change its outcome:
// the libraries describe what went wrong and leave naming options to us.
func withHints(err error) error {
	var re *push.RegistryError
	if err == nil || !errors.As(err, &re) {
		return err
	}
	var hint string
	switch re.Kind {
	case push.Unreachable:
		hint = "check --image"
	case push.Unauthorized:
		if re.NoCredentials {
			hint = fmt.Sprintf("pass --username with --password-stdin (or NIXERY_PASSWORD), run docker login %s, or set GITHUB_TOKEN for ghcr.io", re.Registry)
		}
	case push.Untrusted:
		hint = "or pass --insecure for a plain-HTTP registry"
	case push.PlainHTTP:
		hint = "pass --insecure to allow that"
	}
	if hint == "" {
		return err
	}
	return fmt.Errorf("%w; %s", err, hint)
}
