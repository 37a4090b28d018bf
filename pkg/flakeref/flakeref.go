// Package flakeref hides the credentials a flake reference may carry:
// git+https://oauth2:TOKEN@host/…, https://TOKEN@host/…, a tarball's
// ?access_token=…. Nix needs them; what a build records or shows
// (annotations, SBOMs, provenance, logs, a registry's error messages)
// must not have them.
package flakeref

import (
	"fmt"
	"net/url"
	"regexp"
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
// attributes. A reference with none is returned as it is; one that is no
// valid URL (a control character, a bad escape) is scrubbed as text.
func Redacted(ref string) string {
	u, err := url.Parse(ref)
	if err != nil {
		return scrubQueries(scrubUserinfos(ref), notFlakeParam)
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

// Secrets are the parts of ref that Redacted hides, each with what marks
// it as a credential (user@, :password@, name=value), in the forms a
// message may hold them: as written, percent-decoded, and re-encoded as
// Nix and Go write them (%2f and %2F), a few per secret; longest first.
// They are what the action masks; Scrub also finds them by pattern.
func Secrets(ref string) []string {
	u, err := url.Parse(ref)
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	add := func(prefix string, forms []string, suffix string) {
		for _, f := range forms {
			if f != "" && f != redactedText {
				seen[prefix+f+suffix] = true
			}
		}
	}
	if u.User != nil {
		rawUser, rawPassword, hasPassword := strings.Cut(rawUserinfo(ref), ":")
		if httpLike(u.Scheme) {
			users, passwords := encodings(rawUser, false), encodings(rawPassword, false)
			for i, user := range users {
				if hasPassword {
					user += ":" + passwords[i] // both encoded alike
				}
				add("", []string{user}, "@")
			}
		}
		if hasPassword {
			add(":", encodings(rawPassword, false), "@")
		}
	}
	for _, kv := range strings.Split(u.RawQuery, "&") {
		k, v, _ := strings.Cut(kv, "=")
		name, err := url.QueryUnescape(k)
		if err != nil || flakeParams[name] || v == "" {
			continue
		}
		for _, n := range []string{k, name} {
			add(n+"=", encodings(v, true), "")
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

// rawUserinfo is the userinfo of the URL ref as written (url.URL's User
// re-encodes it): what is before the last '@' of the authority.
func rawUserinfo(ref string) string {
	_, rest, ok := strings.Cut(ref, "://")
	if !ok {
		return ""
	}
	if end := strings.IndexAny(rest, "/?#"); end >= 0 {
		rest = rest[:end]
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return ""
	}
	return rest[:at]
}

// encodings are the forms of a percent-encoded part of a URL (a query
// value when query) that a message may quote, five of them: as written,
// decoded (a query's '+' kept, as Nix reads it), re-encoded as Nix does
// (lower-case hex, upper-case in newer versions), and as Go does.
func encodings(raw string, query bool) []string {
	decoded, err := url.PathUnescape(raw)
	if err != nil {
		return []string{raw, raw, raw, raw, raw}
	}
	goEncoded := url.User(decoded).String()
	if query {
		goEncoded = url.QueryEscape(decoded)
	}
	return []string{raw, decoded, nixEncode(decoded, false), nixEncode(decoded, true), goEncoded}
}

// nixEncode percent-encodes s as Nix does: all but the unreserved
// characters and the sub-delimiters, ':' and '@'.
func nixEncode(s string, upper bool) string {
	format := "%%%02x"
	if upper {
		format = "%%%02X"
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~!$&'()*+,;=:@", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, format, c)
		}
	}
	return b.String()
}

// Scrub hides credentials in s, a message that may quote flake
// references (Nix's, a registry's): first the secrets given (as Secrets
// gives them), then, whatever their encoding, the userinfo of every URL
// in s, and the values of the query parameters that carried a secret in
// the references given (access_token=...) in every URL in s. Other
// parameters stay (a build log's ?version=1.2). What marks a credential
// stays: REDACTED@, name=REDACTED.
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
	s = scrubUserinfos(s)
	// A URL's query needs a ':' and a '?' (github:o/r?access_token=...);
	// the parameters are looked up only then.
	if strings.Contains(s, "?") && strings.Contains(s, ":") {
		if secret := secretParams(secrets); secret != nil {
			s = scrubQueries(s, secret)
		}
	}
	return s
}

// scrubUserinfos hides the userinfo of every URL in s. Most messages
// have no '@' or no "://", without which the pattern cannot match: not
// searched (npm's @scope/name@1.0 lines are common).
func scrubUserinfos(s string) string {
	if !strings.Contains(s, "@") || !strings.Contains(s, "://") {
		return s
	}
	return userinfoInText.ReplaceAllStringFunc(s, scrubUserinfo)
}

// scrubQueries hides the values of the query parameters that secret
// names in every URL in s. Without a '?' there is no query: not searched.
func scrubQueries(s string, secret func(name string) bool) string {
	if !strings.Contains(s, "?") {
		return s
	}
	return urlInText.ReplaceAllStringFunc(s, func(u string) string { return scrubQuery(u, secret) })
}

// secretParams tells which query parameters carried the secrets given
// (name=value, as Secrets gives them), by their decoded names; nil when
// none did.
func secretParams(secrets []string) func(string) bool {
	var names map[string]bool
	for _, sec := range secrets {
		if strings.HasSuffix(sec, "@") {
			continue // a userinfo
		}
		k, _, ok := strings.Cut(sec, "=")
		name, err := url.QueryUnescape(k)
		if !ok || err != nil {
			continue
		}
		if names == nil {
			names = map[string]bool{}
		}
		names[name] = true
	}
	if names == nil {
		return nil
	}
	return func(name string) bool { return names[name] }
}

// notFlakeParam tells whether a query parameter is no flake attribute:
// Redacted's rule, which hides its value.
func notFlakeParam(name string) bool { return !flakeParams[name] }

// notInURL are the characters that end a URL quoted in a message: blanks,
// quotes, brackets, control characters.
const notInURL = "\\s'\"`<>\\x00-\\x1f\\x7f"

// userinfoInText matches scheme://USERINFO@ in a message, the userinfo up
// to the authority's last '@'.
var userinfoInText = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*)://([^/?#` + notInURL + `]*)@`)

// urlInText matches what may be a URL in a message: a scheme, then up to
// a character that ends it.
var urlInText = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*:[^` + notInURL + `]+`)

// queryParam matches one name=value of a URL's query.
var queryParam = regexp.MustCompile(`([?&])([^=&?#]+)=([^&#]*)`)

// scrubUserinfo hides, as Redacted does, the userinfo of an http(s) URL
// and the password of any other in m, a match of userinfoInText.
func scrubUserinfo(m string) string {
	sub := userinfoInText.FindStringSubmatch(m)
	scheme, userinfo := sub[1], sub[2]
	user, _, hasPassword := strings.Cut(userinfo, ":")
	switch {
	case httpLike(strings.ToLower(scheme)):
		userinfo = redactedText
	case hasPassword:
		userinfo = user + ":" + redactedText
	}
	return scheme + "://" + userinfo + "@"
}

// scrubQuery hides the value of every query parameter of the URL u that
// secret names (or whose name is no valid escape), however it is encoded.
func scrubQuery(u string, secret func(name string) bool) string {
	q := strings.IndexByte(u, '?')
	if q < 0 {
		return u
	}
	return u[:q] + queryParam.ReplaceAllStringFunc(u[q:], func(kv string) string {
		m := queryParam.FindStringSubmatch(kv)
		name, err := url.QueryUnescape(m[2])
		if err == nil && !secret(name) || m[3] == "" {
			return kv
		}
		return m[1] + m[2] + "=" + redactedText
	})
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
