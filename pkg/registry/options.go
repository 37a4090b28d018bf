// Package registry is this project's client of OCI registries: whose
// credentials go where, one bounded transport with one retry policy below
// every request, a reader that trusts nothing a registry sends, and
// errors that say in one line what went wrong. Writing images is
// pkg/publish's job; reading the layer cache is pkg/cache's.
package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Options say how to talk to registries. The zero value logs in with the
// docker config's credentials and uses the defaults below.
type Options struct {
	Credentials Credentials

	// Backoff paces the retries of requests that failed with 408, 429 or
	// a 5xx status, a refused or dropped connection, an answer cut short,
	// or a timeout; its Steps bound the tries of one request, and the
	// times an upload (or a download) is started over. Retry does not
	// start over a request the transport gave up on. The zero
	// value means DefaultBackoff. RetryTime bounds the time one request
	// spends waiting between its tries, a Retry-After included; 0 means
	// DefaultRetryTime.
	Backoff   remote.Backoff
	RetryTime time.Duration

	// RegistryTimeout bounds a whole phase of reads from registries (the
	// cache read, merge's reading of its digests); RequestTimeout each
	// request: until its answer's headers, and for manifests and configs
	// until the whole answer. 0 means DefaultRegistryTimeout and
	// DefaultRequestTimeout.
	RegistryTimeout time.Duration
	RequestTimeout  time.Duration

	// Transport replaces remote.DefaultTransport (tests).
	Transport http.RoundTripper
	UserAgent string
}

// DefaultBackoff tries a request five times, waiting about 15 seconds
// in all between the tries.
var DefaultBackoff = remote.Backoff{Duration: time.Second, Factor: 2, Jitter: 0.1, Steps: 5}

// once is the registry library's own retry turned off: the transport
// (RoundTripper) retries every request, and uploads start over through
// Retry only for what the transport could not try again; retrying again
// above them would multiply the tries.
var once = remote.Backoff{Steps: 1}

// Bounds on what a registry can make a build do. Whatever a registry
// sends is untrusted: a hostile one must not be able to hang the build or
// fill its memory.
const (
	// MaxRedirects is the longest redirect chain followed. The registry
	// library replaces Go's own limit of 10 with a check that has none.
	MaxRedirects = 10
	// MaxManifestSize and MaxConfigSize bound the manifests, indexes and
	// image configs read from a registry; ours are a few KiB.
	MaxManifestSize = 4 << 20
	MaxConfigSize   = 4 << 20
	// ReadJobs is how many registry reads run at once.
	ReadJobs = 8
)

// DefaultRequestTimeout bounds one registry request (until the answer's
// headers; for manifests and configs, the whole answer), and
// DefaultRegistryTimeout a whole phase of reads from registries (the
// cache, the images to merge).
const (
	DefaultRequestTimeout  = time.Minute
	DefaultRegistryTimeout = 5 * time.Minute
)

// Validate checks the options' numbers.
func (o Options) Validate() error {
	switch {
	case o.RegistryTimeout < 0:
		return fmt.Errorf("registry timeout %s is negative: give a positive duration such as 5m (0 means the default, %s)", o.RegistryTimeout, DefaultRegistryTimeout)
	case o.RequestTimeout < 0:
		return fmt.Errorf("request timeout %s is negative: give a positive duration such as 1m (0 means the default, %s)", o.RequestTimeout, DefaultRequestTimeout)
	}
	return nil
}

// WithDefaults is o with each unset setting at its default.
func (o Options) WithDefaults() Options {
	if o.Backoff == (remote.Backoff{}) {
		o.Backoff = DefaultBackoff
	}
	if o.RetryTime <= 0 {
		o.RetryTime = DefaultRetryTime
	}
	if o.RegistryTimeout <= 0 {
		o.RegistryTimeout = DefaultRegistryTimeout
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	return o
}

// RetryBackoff is the backoff the options retry with: Backoff, or
// DefaultBackoff.
func (o Options) RetryBackoff() remote.Backoff { return o.WithDefaults().Backoff }

// RoundTripper is the HTTP transport every registry request goes
// through: o.Transport (or the library's default) with a deadline for the
// answer's headers, counted once the request has been sent, the redirect
// limit, and the one retry policy (retry.go).
func (o Options) RoundTripper() http.RoundTripper {
	o = o.WithDefaults()
	base := o.Transport
	if base == nil {
		base = remote.DefaultTransport
	}
	if t, ok := base.(*http.Transport); ok {
		t = t.Clone()
		t.ResponseHeaderTimeout = o.RequestTimeout
		base = t
	}
	return &retryTransport{base: boundedTransport{base: base, idle: o.RequestTimeout}, backoff: o.Backoff, budget: o.RetryTime}
}

// Remote is go-containerregistry's options for l's requests through
// RoundTripper, jobs at a time, with the library's own retries off.
func (o Options) Remote(ctx context.Context, l Login, jobs int) []remote.Option {
	ropts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuth(l.auth),
		remote.WithJobs(jobs),
		remote.WithRetryBackoff(once),
		remote.WithRetryStatusCodes(),
		remote.WithRetryPredicate(func(error) bool { return false }),
		remote.WithTransport(o.RoundTripper()),
		// The library would read a subject's fallback tag without a
		// size limit; publish writes that tag itself.
		remote.WithReferrersTagFallback(false),
	}
	if o.UserAgent != "" {
		ropts = append(ropts, remote.WithUserAgent(o.UserAgent))
	}
	return ropts
}

// CheckTimeout bounds CheckPush: it exists to fail in seconds.
const CheckTimeout = 20 * time.Second

// CheckPush asks repo's registry, before any work, whether it answers and
// lets l push to repo: the push scope's token (where the registry uses
// tokens) and an authenticated read of /v2/. It does not retry: a
// registry that is down now is reported now. It waits CheckTimeout at
// most, or RegistryTimeout when that is shorter.
func (o Options) CheckPush(ctx context.Context, repo name.Repository, l Login) error {
	return o.checkPush(ctx, repo, l, false)
}

// CheckUpload is CheckPush, then starts an upload to repo and cancels it
// (as go-containerregistry's remote.CheckPushPermission does): a registry
// that lets anyone read /v2/, or gives anyone a token, but refuses l's
// pushes to repo is found out too. A cancelled upload leaves no blob; a
// registry that ignores the cancel purges the session itself.
func (o Options) CheckUpload(ctx context.Context, repo name.Repository, l Login) error {
	return o.checkPush(ctx, repo, l, true)
}

func (o Options) checkPush(ctx context.Context, repo name.Repository, l Login, upload bool) error {
	silent := &noAnswerError{within: min(CheckTimeout, o.WithDefaults().RegistryTimeout)}
	ctx, cancel := context.WithTimeoutCause(ctx, silent.within, silent)
	defer cancel()
	fail := func(err error) error {
		if context.Cause(ctx) == silent {
			err = silent // what the request's error says, in fewer words
		}
		return l.Explain(err, repo)
	}
	rt, err := transport.NewWithContext(ctx, repo.Registry, l.auth, o.RoundTripper(), []string{repo.Scope(transport.PushScope)})
	if err != nil {
		return fail(err)
	}
	client := &http.Client{Transport: rt}
	base := fmt.Sprintf("%s://%s/v2/", repo.Scheme(), repo.RegistryStr())
	if err := ask(ctx, client, http.MethodGet, base, http.StatusOK); err != nil {
		return fail(err)
	}
	if !upload {
		return nil
	}
	resp, err := send(ctx, client, http.MethodPost, base+repo.RepositoryStr()+"/blobs/uploads/", http.StatusAccepted)
	if err != nil {
		return fail(err)
	}
	resp.Body.Close()
	// The session's URL is relative to the request's, or absolute.
	if loc := resp.Header.Get("Location"); loc != "" {
		if session, err := resp.Request.URL.Parse(loc); err == nil {
			_ = ask(ctx, client, http.MethodDelete, session.String(), http.StatusNoContent)
		}
	}
	return nil
}

// send sends a request with no body and checks that its answer is want;
// the caller closes the answer's body.
func send(ctx context.Context, client *http.Client, method, url string, want int) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if err := transport.CheckError(resp, want); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return resp, nil
}

// ask is send, closing the answer.
func ask(ctx context.Context, client *http.Client, method, url string, want int) error {
	resp, err := send(ctx, client, method, url, want)
	if err == nil {
		resp.Body.Close()
	}
	return err
}

// NameOptions are the options to parse a reference to ref's registry
// with: strict, and plain HTTP when insecure or when the registry is this
// machine (localhost, 127.0.0.1, ::1), as crane and ko do.
func NameOptions(ref string, insecure bool) []name.Option {
	opts := []name.Option{name.StrictValidation}
	if insecure || IsLoopback(RegistryOf(ref)) {
		opts = append(opts, name.Insecure)
	}
	return opts
}

// RegistryOf returns the registry part of an image reference, or "" when
// the reference names none.
func RegistryOf(image string) string {
	first, _, ok := strings.Cut(image, "/")
	if !ok || !(first == "localhost" || strings.ContainsAny(first, ".:")) {
		return ""
	}
	return first
}

// IsLoopback reports whether a registry host[:port] is this machine.
func IsLoopback(registry string) bool {
	host := registry
	if h, _, err := net.SplitHostPort(registry); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// boundedTransport refuses to follow more than MaxRedirects redirects.
// The registry library builds its own http.Clients, whose redirect check
// has no limit; but each request an http.Client makes to follow a
// redirect carries the response that caused it, so the chain can be
// counted here, below the library.
type boundedTransport struct {
	base http.RoundTripper
	// idle bounds how long a request body may wait to be taken: Go's
	// ResponseHeaderTimeout starts only once the body is sent, so a
	// registry that stops reading an upload would hold it for ever.
	idle time.Duration
}

func (b boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if redirects(req) > MaxRedirects {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, &redirectError{req.URL.Host}
	}
	if req.Body == nil || req.Body == http.NoBody || b.idle <= 0 {
		resp, err := b.base.RoundTrip(req)
		return resp, b.silent(req, err)
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	stalled := &stallError{host: req.URL.Host, idle: b.idle}
	timer := time.AfterFunc(b.idle, func() { cancel(stalled) })
	sent := req.Clone(ctx)
	sent.Body = &progressBody{ReadCloser: req.Body, timer: timer, idle: b.idle}
	resp, err := b.base.RoundTrip(sent)
	timer.Stop()
	if err != nil {
		if context.Cause(ctx) == stalled {
			err = stalled
		}
		cancel(nil)
		return nil, b.silent(req, err)
	}
	// The answer's body is read under ctx: it ends when it is closed.
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: func() { cancel(nil) }}
	return resp, nil
}

// silent names err a silence (*silentError) when it is the transport's
// wait for the answer's headers that ran out, not req's own deadline.
func (b boundedTransport) silent(req *http.Request, err error) error {
	if err != nil && errors.Is(err, context.DeadlineExceeded) && req.Context().Err() == nil {
		return &silentError{host: req.URL.Host, wait: b.idle}
	}
	return err
}

// silentError is a registry that took a request whole and gave no answer
// within wait (ResponseHeaderTimeout): it was reached, and stopped
// answering. It is a timeout of the network's, tried again as one (net/
// http's own error for it reads as a deadline, which is not).
type silentError struct {
	host string
	wait time.Duration
}

func (e *silentError) Error() string {
	return fmt.Sprintf("registry %s gave no answer within %s", e.host, e.wait)
}
func (e *silentError) Timeout() bool   { return true }
func (e *silentError) Temporary() bool { return true }

// progressBody is a request body that puts off its stall timer with
// every read the transport makes of it, and stops it once read to its end.
type progressBody struct {
	io.ReadCloser
	timer *time.Timer
	idle  time.Duration
}

func (p *progressBody) Read(b []byte) (int, error) {
	p.timer.Reset(p.idle)
	n, err := p.ReadCloser.Read(b)
	if err == io.EOF {
		// All sent: the wait for the answer is ResponseHeaderTimeout's,
		// not a stall of the upload.
		p.timer.Stop()
	}
	return n, err
}

// cancelOnClose releases a request's context once its answer is read.
type cancelOnClose struct {
	io.ReadCloser
	cancel func()
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// stallError is a registry that took none of a request's body for idle.
// It is a timeout: the request is tried again as a timed-out one is.
type stallError struct {
	host string
	idle time.Duration
}

func (e *stallError) Error() string {
	return fmt.Sprintf("registry %s took no more of the upload for %s", e.host, e.idle)
}
func (e *stallError) Timeout() bool   { return true }
func (e *stallError) Temporary() bool { return true }

// redirectError is a redirect chain longer than MaxRedirects.
type redirectError struct{ host string }

func (e *redirectError) Error() string {
	return fmt.Sprintf("registry %s redirected more than %d times", e.host, MaxRedirects)
}

// redirects is how many redirects led to req.
func redirects(req *http.Request) int {
	n := 0
	for r := req.Response; r != nil && r.Request != nil && n <= MaxRedirects; r = r.Request.Response {
		n++
	}
	return n
}

// checkRedirect is the redirect policy of the clients this package makes.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= MaxRedirects {
		return fmt.Errorf("registry %s redirected more than %d times", req.URL.Host, MaxRedirects)
	}
	return nil
}
