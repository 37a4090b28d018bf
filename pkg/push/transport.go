package push

import (
	"fmt"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

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
	// MaxCacheManifests is how many platform manifests of one cached
	// index are read; real indexes have a handful.
	MaxCacheManifests = 64
	// readJobs is how many registry reads run at once.
	readJobs = 8
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
	case o.Jobs < 0:
		return fmt.Errorf("%d concurrent uploads is negative: give at least 1 (0 means the default, %d)", o.Jobs, DefaultJobs)
	}
	return nil
}

func (o Options) requestTimeout() time.Duration {
	if o.RequestTimeout <= 0 {
		return DefaultRequestTimeout
	}
	return o.RequestTimeout
}

func (o Options) registryTimeout() time.Duration {
	if o.RegistryTimeout <= 0 {
		return DefaultRegistryTimeout
	}
	return o.RegistryTimeout
}

// transport is the HTTP transport every registry request goes through:
// o.Transport (or the library's default) with a deadline for the answer's
// headers, counted once the request has been sent, the redirect limit,
// and the one retry policy (retry.go).
func (o Options) transport() http.RoundTripper {
	base := o.Transport
	if base == nil {
		base = remote.DefaultTransport
	}
	if t, ok := base.(*http.Transport); ok {
		t = t.Clone()
		t.ResponseHeaderTimeout = o.requestTimeout()
		base = t
	}
	return &retryTransport{base: boundedTransport{base}, backoff: o.backoff(), budget: o.retryTime()}
}

func (o Options) retryTime() time.Duration {
	if o.RetryTime <= 0 {
		return DefaultRetryTime
	}
	return o.RetryTime
}

// boundedTransport refuses to follow more than MaxRedirects redirects.
// The registry library builds its own http.Clients, whose redirect check
// has no limit; but each request an http.Client makes to follow a
// redirect carries the response that caused it, so the chain can be
// counted here, below the library.
type boundedTransport struct{ base http.RoundTripper }

func (b boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if redirects(req) > MaxRedirects {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, &redirectError{req.URL.Host}
	}
	return b.base.RoundTrip(req)
}

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
