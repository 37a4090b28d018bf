package registry

import (
	"fmt"
	"regexp"
	"strings"
)

// urlScheme is the "SCHEME://" a URL starts with.
var urlScheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)

// port is what follows "NAME:" when NAME is a registry's host and the
// rest its port (docker:5000/app), not a transport (docker:app.tar).
var port = regexp.MustCompile(`^[0-9]+(/|$)`)

// transports are the prefixes skopeo and podman write before a
// reference, with where nixery takes what they name instead ("" when
// nowhere).
var transports = map[string]string{
	"oci":                "--output takes oci:DIR",
	"oci-archive":        "--output takes oci:DIR",
	"docker":             "--output takes docker:FILE.tar",
	"docker-archive":     "--output takes docker:FILE.tar",
	"docker-daemon":      "",
	"containers-storage": "",
	"dir":                "",
}

// CheckRefForm refuses a repository or image reference written as a URL
// (https://ghcr.io/me/app) or with a transport (oci:DIR, docker:FILE),
// which Docker refuses and which would otherwise be read with the scheme
// or transport as the registry's host. what names where it was given
// (--image). ref is quoted without the user and password it may hold.
func CheckRefForm(what, ref string) error {
	if scheme := urlScheme.FindString(ref); scheme != "" {
		return fmt.Errorf("%s %q: give REGISTRY/NAME, not a URL: drop %q", what, RedactedRef(ref), scheme)
	}
	transport, rest, ok := strings.Cut(ref, ":")
	hint, known := transports[strings.ToLower(transport)]
	if !ok || !known || port.MatchString(rest) {
		return nil
	}
	msg := fmt.Sprintf("%s %q: give REGISTRY/NAME, not a transport (%s:)", what, ref, transport)
	if hint != "" {
		msg += "; " + hint
	}
	return fmt.Errorf("%s", msg)
}

// RedactedRef is ref with the user and password of its registry (before
// an '@' that comes before the first '/'; a digest's '@' comes after it)
// replaced by REDACTED.
func RedactedRef(ref string) string {
	scheme, rest, ok := strings.Cut(ref, "://")
	if !ok {
		scheme, rest = "", ref
	} else {
		scheme += "://"
	}
	slash := strings.IndexByte(rest, '/')
	if slash < 0 && !ok {
		return ref
	}
	host := rest
	if slash >= 0 {
		host = rest[:slash]
	}
	at := strings.LastIndexByte(host, '@')
	if at < 0 {
		return ref
	}
	return scheme + "REDACTED" + rest[at:]
}
