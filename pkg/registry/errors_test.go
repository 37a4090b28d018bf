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
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// dialErr is how a refused connection reaches us through net/http.
func dialErr(errno syscall.Errno) error {
	return &url.Error{Op: "Get", URL: "https://r.example/v2/", Err: &net.OpError{
		Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", errno),
	}}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestExplain(t *testing.T) {
	repo, err := name.NewRepository("r.example/o/n")
	assert.NilError(t, err)
	anon := Login{auth: authn.Anonymous}
	withToken := Login{source: "GITHUB_TOKEN"}
	cases := []struct {
		name string
		err  error
		l    Login
		want string
	}{
		{"refused", dialErr(syscall.ECONNREFUSED), anon,
			"cannot reach registry r.example: connection refused; check that the registry is running"},
		{"no such host", &url.Error{Op: "Get", URL: "https://r.example/v2/", Err: &net.DNSError{Err: "no such host", Name: "r.example", IsNotFound: true}}, anon,
			"cannot reach registry r.example: no such host"},
		{"timeout", &url.Error{Op: "Get", URL: "https://r.example/v2/", Err: timeoutErr{}}, anon,
			"cannot reach registry r.example: timed out; check the network"},
		{"no answer once reached", tried(5, &silentError{host: "r.example", wait: time.Minute}), anon,
			"push to r.example/o/n: registry r.example stopped answering (no answer within 1m0s, 5 times); check the registry (its logs, its load)"},
		{"upload stalled", &url.Error{Op: "Patch", URL: "https://r.example/v2/o/n/blobs/uploads/1", Err: &stallError{host: "r.example", idle: 5 * time.Minute}}, anon,
			"push to r.example/o/n: registry r.example took no more of the upload for 5m0s; check the registry (its logs, its free disk space)"},
		{"untrusted certificate", &url.Error{Op: "Get", URL: "https://r.example/v2/", Err: x509.UnknownAuthorityError{}}, anon,
			"cannot reach registry r.example: its TLS certificate is not trusted"},
		{"plain HTTP registry", errors.New(`Get "https://r.example/v2/": http: server gave HTTP response to HTTPS client`), anon,
			"cannot reach registry r.example: it speaks plain HTTP"},
		{"unauthorized by code", &transport.Error{StatusCode: http.StatusForbidden, Errors: []transport.Diagnostic{{Code: transport.UnauthorizedErrorCode}}}, withToken,
			"authentication failed for registry r.example with the credentials from GITHUB_TOKEN: check them"},
		{"denied", &transport.Error{StatusCode: http.StatusForbidden, Errors: []transport.Diagnostic{{Code: transport.DeniedErrorCode, Message: "requested access to the resource is denied"}}}, withToken,
			"registry r.example denied the credentials from GITHUB_TOKEN the right to push to o/n: 403 Forbidden (DENIED: requested access to the resource is denied); the workflow needs `permissions: packages: write`"},
		{"denied in a pull request", &transport.Error{StatusCode: http.StatusForbidden, Errors: []transport.Diagnostic{{Code: transport.DeniedErrorCode, Message: "installation not allowed to Write organization package"}}},
			Login{source: "GITHUB_TOKEN", event: "pull_request"},
			"the workflow needs `permissions: packages: write`, and the package must grant this repository write access; but a pull request from a fork gets a read-only token, whatever the workflow asks for"},
		{"denied anonymous", &transport.Error{StatusCode: http.StatusForbidden}, anon,
			"registry r.example denied anonymous users the right to push to o/n: 403 Forbidden"},
		{"other status", &transport.Error{StatusCode: http.StatusRequestEntityTooLarge}, anon,
			"push to r.example/o/n: registry answered 413 Request Entity Too Large"},
		{"cancelled", fmt.Errorf("upload: %w", context.Canceled), anon, "push to r.example/o/n cancelled"},
		{"deadline", fmt.Errorf("upload: %w", context.DeadlineExceeded), anon, "push to r.example/o/n timed out"},
		{"anything else", errors.New("first\nsecond"), anon, "push to r.example/o/n: first; second"},
		{"500 after tries", tried(5, fmt.Errorf("upload: %w", &transport.Error{StatusCode: http.StatusInternalServerError})), anon,
			"push to r.example/o/n: registry answered 500 Internal Server Error 5 times; check the registry (its logs, its free disk space)"},
		{"reset after tries", tried(3, dialErr(syscall.ECONNRESET)), anon, "connection reset by peer (tried 3 times)"},
		{"no answer", &noAnswerError{within: 20 * time.Second}, anon,
			"push to r.example/o/n: the registry did not answer within 20s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := explain(tc.err, repo, tc.l)
			assert.ErrorContains(t, got, tc.want)
			var re *RegistryError
			assert.Assert(t, errors.As(got, &re))
			assert.Check(t, re.PullRequestToken == (tc.l.event == "pull_request"))
			assert.Check(t, errors.Is(got, tc.err), "the cause is lost")
		})
	}
}

func TestRetryable(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"refused", dialErr(syscall.ECONNREFUSED), true},
		{"reset", dialErr(syscall.ECONNRESET), true},
		{"unexpected EOF", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"timeout", timeoutErr{}, true},
		{"no answer", &silentError{host: "r.example", wait: time.Minute}, true},
		{"429", &transport.Error{StatusCode: http.StatusTooManyRequests}, true},
		{"503", &transport.Error{StatusCode: http.StatusServiceUnavailable}, true},
		{"401", &transport.Error{StatusCode: http.StatusUnauthorized}, false},
		{"404", &transport.Error{StatusCode: http.StatusNotFound}, false},
		{"no such host", &net.DNSError{Err: "no such host", IsNotFound: true}, false},
		{"cancelled", context.Canceled, false},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, retryable(tc.err), tc.want)
		})
	}
}

// Redacting a registry error cleans its text and keeps its cause and
// kind: a caller can still tell a refused connection or a 403 apart.
func TestRedactKeepsCause(t *testing.T) {
	repo, err := name.NewRepository("r.example/o/n")
	assert.NilError(t, err)
	const secret = "s3cret-token"

	terr := &transport.Error{StatusCode: http.StatusForbidden, Errors: []transport.Diagnostic{{Code: transport.DeniedErrorCode, Message: "token " + secret + " may not push"}}}
	got := redact(explain(terr, repo, Login{source: "GITHUB_TOKEN"}), []string{secret})
	assert.Check(t, !strings.Contains(got.Error(), secret), got.Error())
	assert.ErrorContains(t, got, "DENIED: token *** may not push")
	var re *RegistryError
	assert.Assert(t, errors.As(got, &re))
	assert.Equal(t, re.Kind, Denied)
	var cause *transport.Error
	assert.Assert(t, errors.As(got, &cause))
	assert.Equal(t, cause, terr)

	// An error that is not a registry's: the text is cleaned, the cause
	// kept.
	nerr := &url.Error{Op: "Get", URL: "https://u:" + secret + "@r.example/v2/", Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	got = redact(fmt.Errorf("login: %w", nerr), []string{secret})
	assert.Equal(t, got.Error(), `login: Get "https://u:***@r.example/v2/": dial tcp: connect: connection refused`)
	assert.Check(t, errors.Is(got, syscall.ECONNREFUSED))
	var op *net.OpError
	assert.Check(t, errors.As(got, &op))

	// Nothing to clean: the error itself.
	plain := errors.New("no secret here")
	assert.Equal(t, redact(plain, []string{secret}), plain)
}

// A registry's words reach the terminal with nothing a terminal acts on:
// colours, line clears, a window title (OSC ... BEL) and bidirectional
// overrides come out escaped, and a message of pages is cut.
func TestExplainEscapesRegistryWords(t *testing.T) {
	repo, err := name.NewRepository("r.example/o/n")
	assert.NilError(t, err)
	evil := "\x1b[31mred\x1b[0m \x1b[2K\x1b]0;owned\x07 \u202eelif \xff"
	for _, code := range []int{http.StatusForbidden, http.StatusBadRequest} {
		msg := explain(&transport.Error{StatusCode: code, Errors: []transport.Diagnostic{{Code: transport.DeniedErrorCode, Message: evil}}}, repo, Login{}).Error()
		assert.Check(t, strings.Contains(msg, `\x1b[31mred\x1b[0m \x1b[2K\x1b]0;owned\x07 \u202eelif `+"\ufffd"), msg)
		assert.Check(t, strings.IndexFunc(msg, unprintable) < 0, "%q", msg)
		assert.Equal(t, OneLine(fmt.Errorf("wrapped: %w", explain(&transport.Error{StatusCode: code, Errors: []transport.Diagnostic{{Code: transport.DeniedErrorCode, Message: evil}}}, repo, Login{}))), msg)
	}
	msg := explain(errors.New("odd failure: \x1b]0;title\x07"), repo, Login{}).Error()
	assert.Check(t, strings.IndexFunc(msg, unprintable) < 0, "%q", msg)

	long := explain(&transport.Error{StatusCode: http.StatusBadRequest, Errors: []transport.Diagnostic{{Code: transport.DeniedErrorCode, Message: strings.Repeat("é", 5000)}}}, repo, Login{}).Error()
	assert.Check(t, len(long) < maxQuoted+200, "%d bytes", len(long))
	assert.Check(t, strings.Contains(long, "… (cut at 1000 bytes)"), long)
	assert.Check(t, utf8.ValidString(long))
}

// A read refused is told as the read it was, not as a push: no "right to
// push", no packages: write, and no pull-request advice about pushing.
func TestExplainDoingDeniedRead(t *testing.T) {
	repo, err := name.NewRepository("r.example/o/n")
	assert.NilError(t, err)
	denied := &transport.Error{StatusCode: http.StatusForbidden, Errors: []transport.Diagnostic{{Code: transport.DeniedErrorCode, Message: "denied"}}}
	l := Login{source: "GITHUB_TOKEN", event: "pull_request"}
	got := l.ExplainDoing(denied, repo, "read the images to merge from r.example/o/n")
	assert.Check(t, is.Equal(got.Error(), "read the images to merge from r.example/o/n: registry r.example denied the credentials from GITHUB_TOKEN: 403 Forbidden (DENIED: denied); the package must grant this repository read access"))
	var re *RegistryError
	assert.Assert(t, errors.As(got, &re))
	assert.Check(t, is.Equal(re.Kind, Denied))
	assert.Check(t, !re.PullRequestToken)
	pushed := l.Explain(denied, repo)
	assert.Check(t, is.Contains(pushed.Error(), "the right to push to o/n"))
	assert.Check(t, errors.As(pushed, &re) && re.PullRequestToken)
}
