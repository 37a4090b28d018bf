// Package flakeref hides the credentials a flake reference may carry:
// git+https://oauth2:TOKEN@host/…, https://TOKEN@host/…, a tarball's
// ?access_token=…. Nix needs them; what a build records or shows
// (annotations, SBOMs, provenance, logs, a registry's error messages)
// must not have them.
package flakeref

import (
	"net/url"
	"sort"
	"strings"
)

// redactedText stands for a hidden credential.
const redactedText = "REDACTED"

// flakeParams are the query parameters of flake references that carry no
// secret: they pick a revision, a directory or how to fetch.
var flakeParams = map[string]bool{
	"ref": true, "rev": true, "dir": true, "narHash": true, "lastModified": true,
	"lastModifiedDate": true, "revCount": true, "shallow": true, "submodules": true,
	"allRefs": true, "host": true, "exportIgnore": true, "lfs": true,
	"keytype": true, "publicKey": true, "publicKeys": true, "verifyCommit": true,
}

// Redacted is the flake reference ref with its credentials replaced by
// REDACTED: the user and password of an http(s) URL (a token may be
// either), the password of any other URL (an ssh URL's user is a login
// name, kept), and the values of query parameters that are not flake
// attributes. A reference with none is returned as it is.
func Redacted(ref string) string {
	u, err := url.Parse(ref)
	if err != nil {
		return ref
	}
	changed := false
	if u.User != nil {
		_, hasPassword := u.User.Password()
		switch {
		case httpLike(u.Scheme):
			u.User = url.User(redactedText)
			changed = true
		case hasPassword:
			u.User = url.UserPassword(u.User.Username(), redactedText)
			changed = true
		}
	}
	if q, err := url.ParseQuery(u.RawQuery); err == nil {
		hidden := false
		for k := range q {
			if !flakeParams[k] {
				q[k] = []string{redactedText}
				hidden = true
			}
		}
		if hidden {
			u.RawQuery = q.Encode()
			changed = true
		}
	}
	if !changed {
		return ref
	}
	return u.String()
}

// Secrets are the parts of ref that Redacted hides, in the forms a
// message (Nix's, quoting a URL) may hold them: as written and
// percent-decoded, each with what marks it as a credential (user@,
// :password@, name=value), longest first.
func Secrets(ref string) []string {
	u, err := url.Parse(ref)
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	add := func(s string) {
		if s != "" && s != redactedText {
			seen[s] = true
		}
	}
	if u.User != nil {
		user := u.User.Username()
		password, hasPassword := u.User.Password()
		raw := u.User.String() // as written, percent-encoded
		if httpLike(u.Scheme) {
			add(raw + "@")
			add(user + "@")
			if hasPassword {
				add(user + ":" + password + "@")
			}
		}
		if hasPassword {
			_, encoded, _ := strings.Cut(raw, ":")
			add(":" + encoded + "@")
			add(":" + password + "@")
		}
	}
	for _, kv := range strings.Split(u.RawQuery, "&") {
		k, v, _ := strings.Cut(kv, "=")
		name, err := url.QueryUnescape(k)
		if err != nil || flakeParams[name] || v == "" {
			continue
		}
		add(k + "=" + v)
		if value, err := url.QueryUnescape(v); err == nil {
			add(name + "=" + value)
		}
	}
	out := make([]string, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if len(out[i]) != len(out[j]) {
			return len(out[i]) > len(out[j])
		}
		return out[i] < out[j]
	})
	return out
}

// Scrub replaces in s every secret (as Secrets gives them) by REDACTED,
// keeping what marks it (the @, the name=).
func Scrub(s string, secrets []string) string {
	for _, sec := range secrets {
		if !strings.Contains(s, sec) {
			continue
		}
		var with string
		switch {
		case strings.HasPrefix(sec, ":") && strings.HasSuffix(sec, "@"):
			with = ":" + redactedText + "@"
		case strings.HasSuffix(sec, "@"):
			with = redactedText + "@"
		default:
			name, _, _ := strings.Cut(sec, "=")
			with = name + "=" + redactedText
		}
		s = strings.ReplaceAll(s, sec, with)
	}
	return s
}

// httpLike tells whether a URL scheme is http(s), alone or under a
// flake fetcher (git+https, tarball+http, file+https).
func httpLike(scheme string) bool {
	_, s, ok := strings.Cut(scheme, "+")
	if !ok {
		s = scheme
	}
	return s == "http" || s == "https"
}
