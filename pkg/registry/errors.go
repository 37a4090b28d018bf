package registry

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// ErrorKind says what went wrong with a registry, so that a caller can
// tell its users which of their options to change.
type ErrorKind int

const (
	OtherError   ErrorKind = iota
	Unreachable            // no such host, refused, timed out
	Unauthorized           // no credentials, or wrong ones
	Denied                 // the credentials may not push there
	Untrusted              // a TLS certificate this machine does not trust
	PlainHTTP              // the registry speaks plain HTTP only
	NoAnswer               // it took the connection, but did not answer in time
)

// RegistryError is a failure to talk to a registry, in one line that says
// what went wrong. It names no option of any program: callers add those
// (see Kind). Its cause, the error the registry client gave, stays
// reachable through errors.Is and errors.As.
type RegistryError struct {
	Registry string
	Kind     ErrorKind
	// NoCredentials is set for Unauthorized when none were found.
	NoCredentials bool
	// LoginElsewhere is set with NoCredentials when a user name and
	// password were given, but for another registry (they go to the
	// pushed-to registry only).
	LoginElsewhere bool
	// PullRequestToken is set for Denied when the credentials were the
	// workflow token of a pull_request event, which has no write access
	// when the pull request comes from a fork.
	PullRequestToken bool
	msg              string
	cause            error
}

func (e *RegistryError) Error() string { return e.msg }

// Unwrap returns the error the registry client gave.
func (e *RegistryError) Unwrap() error { return e.cause }

// explain turns an error from talking to the registry into one line that
// says what went wrong, keeping err as its cause. The registry library's
// errors name URLs and wrap several layers; users need the cause.
func explain(err error, repo name.Repository, l Login) error {
	return explainDoing(err, repo, l, "push to "+repo.String(), true)
}

// explainDoing is explain for a failure while doing what doing says,
// e.g. "read the image sha256:… from r/x", rather than pushing to repo.
func explainDoing(err error, repo name.Repository, l Login, doing string, pushing bool) error {
	if err == nil {
		return nil
	}
	kind, msg := explainErr(err, repo, l, doing, pushing)
	return &RegistryError{
		Registry: repo.RegistryStr(), Kind: kind, msg: msg, cause: err,
		NoCredentials:    kind == Unauthorized && l.source == "",
		LoginElsewhere:   kind == Unauthorized && l.source == "" && l.elsewhere,
		PullRequestToken: kind == Denied && l.source == "GITHUB_TOKEN" && l.event == "pull_request" && pushing,
	}
}

// explainErr tells what kind of failure err is, and says it in one line.
func explainErr(err error, repo name.Repository, l Login, doing string, pushing bool) (ErrorKind, string) {
	reg := repo.RegistryStr()
	var terr *transport.Error
	var dns *net.DNSError
	var unknownCA x509.UnknownAuthorityError
	var badHost x509.HostnameError
	var badCert x509.CertificateInvalidError
	var silent *noAnswerError
	var stall *stallError
	var quiet *silentError
	switch {
	case errors.As(err, &silent):
		return NoAnswer, fmt.Sprintf("%s: the registry did not answer within %s", doing, silent.within)
	case errors.As(err, &quiet):
		// It answered before (the check, earlier requests): the network
		// reaches it.
		return OtherError, fmt.Sprintf("%s: registry %s stopped answering (no answer within %s%s); check the registry (its logs, its load)", doing, reg, quiet.wait, triedTimes(err, ", %d times"))
	case errors.Is(err, context.Canceled):
		return OtherError, doing + " cancelled"
	case errors.Is(err, context.DeadlineExceeded):
		return OtherError, doing + " timed out"
	case errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || hasCode(terr, transport.UnauthorizedErrorCode)):
		if l.source == "" {
			return Unauthorized, fmt.Sprintf("authentication failed for registry %s: no credentials found", reg)
		}
		return Unauthorized, fmt.Sprintf("authentication failed for registry %s with the credentials from %s: check them", reg, l.source)
	case errors.As(err, &terr) && (terr.StatusCode == http.StatusForbidden || hasCode(terr, transport.DeniedErrorCode)):
		who := "anonymous users"
		if l.source != "" {
			who = "the credentials from " + l.source
		}
		hint := ""
		switch {
		case l.source != "GITHUB_TOKEN":
		case pushing:
			hint = "; the workflow needs `permissions: packages: write`, and the package must grant this repository write access"
			if l.event == "pull_request" {
				hint += "; but a pull request from a fork gets a read-only token, whatever the workflow asks for"
			}
		default:
			hint = "; the package must grant this repository read access"
		}
		if !pushing {
			return Denied, fmt.Sprintf("%s: registry %s denied %s: %s%s", doing, reg, who, oneLine(terr), hint)
		}
		return Denied, fmt.Sprintf("registry %s denied %s the right to push to %s: %s%s", reg, who, repo.RepositoryStr(), oneLine(terr), hint)
	case errors.As(err, &terr) && terr.StatusCode == http.StatusBadRequest && repo.Scheme() == "http" && len(terr.Errors) == 0:
		// Plain HTTP, tried after HTTPS failed, to a registry that only
		// speaks HTTPS.
		return OtherError, fmt.Sprintf("%s: registry answered %s to plain HTTP; if it serves HTTPS, this machine must trust its certificate (add its CA to the system store or point SSL_CERT_FILE at it)", doing, oneLine(terr))
	case errors.As(err, &terr):
		return OtherError, fmt.Sprintf("%s: registry answered %s%s", doing, oneLine(terr), triedTimes(err, " %d times; check the registry (its logs, its free disk space)"))
	case errors.As(err, &dns):
		return Unreachable, fmt.Sprintf("cannot reach registry %s: no such host", reg)
	case errors.Is(err, syscall.ECONNREFUSED):
		return Unreachable, fmt.Sprintf("cannot reach registry %s: connection refused; check that the registry is running", reg)
	case errors.As(err, &unknownCA), errors.As(err, &badHost), errors.As(err, &badCert):
		return Untrusted, fmt.Sprintf("cannot reach registry %s: its TLS certificate is not trusted (%s); use a trusted certificate", reg, quoted(err.Error()))
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return PlainHTTP, fmt.Sprintf("cannot reach registry %s: it speaks plain HTTP", reg)
	case errors.As(err, &stall):
		// It answered before (the check, earlier requests): the network
		// reaches it.
		return OtherError, fmt.Sprintf("%s: %s%s; check the registry (its logs, its free disk space)", doing, stall.Error(), triedTimes(err, " (tried %d times)"))
	case IsTimeout(err):
		return Unreachable, fmt.Sprintf("cannot reach registry %s: timed out%s; check the network", reg, triedTimes(err, " (tried %d times)"))
	}
	return OtherError, fmt.Sprintf("%s: %s%s", doing, quoted(strings.ReplaceAll(err.Error(), "\n", "; ")), triedTimes(err, " (tried %d times)"))
}

// triedTimes says how many tries a failure persisted over, if several:
// format (" (tried %d times)", ", %d times") with the count, else "".
func triedTimes(err error, format string) string {
	if n := Tries(err); n > 1 {
		return fmt.Sprintf(format, n)
	}
	return ""
}

// noAnswerError is a registry that took the connection but did not
// answer within the time allowed. It is the cause of a context's end, so
// the request's error wraps it already: it wraps nothing but the
// deadline.
type noAnswerError struct{ within time.Duration }

func (e *noAnswerError) Error() string {
	return fmt.Sprintf("the registry did not answer within %s", e.within)
}
func (e *noAnswerError) Unwrap() error { return context.DeadlineExceeded }

func hasCode(e *transport.Error, code transport.ErrorCode) bool {
	for _, d := range e.Errors {
		if d.Code == code {
			return true
		}
	}
	return false
}

// oneLine describes a registry error by its status and codes, without the
// request URL the library puts in front.
func oneLine(e *transport.Error) string {
	var parts []string
	for _, d := range e.Errors {
		s := string(d.Code)
		if d.Message != "" {
			s += ": " + d.Message
		}
		parts = append(parts, s)
	}
	status := fmt.Sprintf("%d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if len(parts) == 0 {
		return status
	}
	return status + " (" + quoted(strings.Join(parts, "; ")) + ")"
}

// maxQuoted bounds how many bytes of a registry's words an error quotes:
// a registry may send pages.
const maxQuoted = 1000

// quoted is a registry's words fit for a terminal and a log (Quoted),
// at most maxQuoted bytes.
func quoted(s string) string { return Quoted(s, maxQuoted) }

// Quoted is words from elsewhere fit for a terminal and a log: on one
// line, every character a terminal would act on escaped (printable),
// and at most max bytes.
func Quoted(s string, max int) string {
	s = printable(strings.Join(strings.Fields(s), " "))
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "… (cut at " + fmt.Sprint(max) + " bytes)"
}

// IsTimeout tells a request that ran out of time: the transport's
// deadline for the answer's headers, or the client's for the whole
// answer (then the body's read ends with the request's context).
func IsTimeout(err error) bool {
	var ne net.Error
	return (errors.As(err, &ne) && ne.Timeout()) || errors.Is(err, context.DeadlineExceeded)
}

// Transient tells a failure that doing it again from the start may get
// past (a connection dropped or reset, a registry that said to try
// again, an answer cut short, an upload session the registry closed):
// what a caller that streams a blob, which the transport cannot replay,
// starts over for.
func Transient(err error) bool {
	var silent *silentError
	if errors.As(err, &silent) {
		// Taken whole, and no answer: sending a stream again would
		// cost its whole upload for the same silence.
		return false
	}
	return transportRetries(err)
}

// transportRetries tells the failures the transport tries a request
// again for: Transient's, and a registry's silence.
func transportRetries(err error) bool {
	var terr *transport.Error
	if errors.As(err, &terr) {
		if retryStatus(terr.StatusCode) {
			return true
		}
		// A retried request of a session the registry already closed,
		// or one it moved on from.
		return terr.StatusCode == http.StatusNotFound &&
			(hasCode(terr, transport.BlobUploadUnknownErrorCode) || hasCode(terr, transport.BlobUploadInvalidErrorCode))
	}
	return retryable(err) || errors.Is(err, errTruncated)
}

// BlobNotLinked tells a manifest refused for blobs the registry does not
// (yet) know.
func BlobNotLinked(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && (hasCode(terr, transport.ManifestBlobUnknownErrorCode) ||
		hasCode(terr, transport.BlobUnknownErrorCode) || hasCode(terr, transport.DigestInvalidErrorCode))
}

// Refused tells a registry's answer that says no to the request itself
// (4xx but 408 and 429): a request that failed otherwise (no answer, one
// cut short, a 5xx) may have taken effect.
func Refused(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode < 500 && !retryStatus(terr.StatusCode)
}

// IsNotFound tells an answer 404 Not Found.
func IsNotFound(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound
}

// OneLine is err's message on one line; a registry's own words are kept,
// but never its line breaks, its control characters (which would move a
// terminal's cursor or set its title), the request's URL, or the
// credentials an error of Login.Redact hides.
func OneLine(err error) string {
	msg := err.Error()
	var re *RegistryError
	var red *redactedError
	var terr *transport.Error
	var uerr *url.Error
	switch {
	case errors.As(err, &re):
		return re.msg // already quoted, and redacted
	case errors.As(err, &red):
		msg = scrub(OneLine(red.cause), red.secrets)
	case errors.As(err, &terr):
		msg = oneLine(terr)
	case errors.As(err, &uerr):
		msg = uerr.Err.Error() // without the request's URL
	}
	return quoted(msg)
}

// printable escapes every character of s that is not printable, space
// aside: control characters (\x1b for ESC, which starts colours,
// line clears and window titles) and invisible ones (\u202e, which
// reverses the text after it). Bytes that are not UTF-8 become U+FFFD.
func printable(s string) string {
	if utf8.ValidString(s) && strings.IndexFunc(s, unprintable) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case !unprintable(r):
			b.WriteRune(r)
		case r < utf8.RuneSelf:
			fmt.Fprintf(&b, "\\x%02x", r)
		case r <= 0xffff:
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			fmt.Fprintf(&b, "\\U%08x", r)
		}
	}
	return b.String()
}

func unprintable(r rune) bool { return r != ' ' && !unicode.IsPrint(r) }

// retryable says which failures are worth another try: rate limits and
// server errors (which the library reports as temporary), dropped and
// refused connections, and timeouts. A refused connection is retried
// because registries restart; a DNS or TLS failure will not go away.
func retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	for _, e := range []error{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EPIPE, io.ErrUnexpectedEOF, io.EOF, net.ErrClosed} {
		if errors.Is(err, e) {
			return true
		}
	}
	var temp interface{ Temporary() bool }
	if errors.As(err, &temp) && temp.Temporary() {
		return true
	}
	return IsTimeout(err)
}

// redact replaces every secret in err's message. The cause stays
// reachable through errors.Is and errors.As, as go-containerregistry's
// transport.Error keeps its request; only the text is cleaned, so print
// the returned error, not its causes.
func redact(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := scrub(msg, secrets)
	if clean == msg {
		return err // the causes' words are in its text: none has a secret
	}
	if re, ok := err.(*RegistryError); ok {
		cp := *re
		cp.msg = clean
		return &cp
	}
	// OneLine reads a registry's own words from the cause: it hides
	// the secrets there too.
	return &redactedError{msg: clean, cause: err, secrets: secrets}
}

// scrub replaces each secret in s.
func scrub(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 { // a shorter "secret" would blank out ordinary words
			s = strings.ReplaceAll(s, sec, "***")
		}
	}
	return s
}

// redactedError is an error whose text has its secrets replaced.
type redactedError struct {
	msg     string
	cause   error
	secrets []string
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.cause }
