package registry

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/nixery-action/nixery-action/internal/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// failing is a server that answers every request with code, counting them.
func failing(t *testing.T, code int) (url string, requests *atomic.Int32) {
	requests = new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		testenv.RegistryError(w, code, "UNKNOWN", "unknown error")
	}))
	t.Cleanup(srv.Close)
	return srv.URL, requests
}

// sendThrough makes one request through rt with ctx, and reads the registry's
// error the way the registry library does.
func sendThrough(ctx context.Context, rt http.RoundTripper, method, url string) error {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader("body"))
	if err != nil {
		return err
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return transport.CheckError(resp, http.StatusOK)
}

// notices collects what OnRetry is told.
type notices struct {
	mu  sync.Mutex
	got []Retrying
}

func (n *notices) add(r Retrying) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.got = append(n.got, r)
}

// Retry does not start over a request the transport tried Steps times
// already: a registry answering 500 to every request sees Steps of them,
// not Steps times Steps; each retry is told once, and the error says
// how many tries were made.
func TestRetryDoesNotMultiply(t *testing.T) {
	url, requests := failing(t, http.StatusInternalServerError)
	o := quick(5)
	rt := o.RoundTripper()
	var n notices
	ctx := OnRetry(context.Background(), n.add)
	err := Retry(ctx, o.Backoff, Transient, func(ctx context.Context, _ int) error {
		return sendThrough(ctx, rt, http.MethodPost, url+"/v2/x/blobs/uploads/")
	})
	assert.Check(t, is.Equal(requests.Load(), int32(5)))
	assert.Check(t, is.Equal(Tries(err), 5))
	assert.Assert(t, is.Len(n.got, 4))
	for i, r := range n.got {
		assert.Check(t, is.Equal(r.Next, i+2))
		assert.Check(t, is.Equal(r.Tries, 5))
		assert.Check(t, is.Equal(r.Cause, "registry answered 500 Internal Server Error (UNKNOWN: unknown error)"))
	}
	assert.Check(t, strings.HasSuffix(n.got[0].String(), "; retrying in 5ms (2/5)"), n.got[0].String())
}

// What the transport cannot send again (a chunk of an upload) is what
// Retry starts over, as many times as the backoff allows and no more.
func TestRetryStartsOverWhatTransportCannot(t *testing.T) {
	url, requests := failing(t, http.StatusBadGateway)
	o := quick(4)
	rt := o.RoundTripper()
	var n notices
	ctx := OnRetry(context.Background(), n.add)
	err := Retry(ctx, o.Backoff, Transient, func(ctx context.Context, _ int) error {
		return sendThrough(ctx, rt, http.MethodPatch, url+"/v2/x/blobs/uploads/1")
	})
	assert.Check(t, is.Equal(requests.Load(), int32(4)))
	assert.Check(t, is.Equal(Tries(err), 4))
	assert.Check(t, is.Len(n.got, 3))
	// Not worth another try: once, and no count.
	url, requests = failing(t, http.StatusForbidden)
	err = Retry(ctx, o.Backoff, Transient, func(ctx context.Context, _ int) error {
		return sendThrough(ctx, rt, http.MethodPut, url+"/v2/x/manifests/v1")
	})
	assert.Check(t, is.Equal(requests.Load(), int32(1)))
	assert.Check(t, is.Equal(Tries(err), 0))
}

// A registry that takes the connection and never answers is reported by
// CheckPush within RegistryTimeout (when shorter than its 20s), as one
// that did not answer.
func TestCheckPushNoAnswer(t *testing.T) {
	repo, err := name.NewRepository(testenv.SilentListener(t)+"/me/x", name.Insecure)
	assert.NilError(t, err)
	o := Options{RegistryTimeout: 500 * time.Millisecond}
	start := time.Now()
	err = o.CheckPush(context.Background(), repo, Login{auth: authn.Anonymous})
	took := time.Since(start)
	assert.Error(t, err, "push to "+repo.String()+": the registry did not answer within 500ms")
	var re *RegistryError
	assert.Assert(t, errors.As(err, &re))
	assert.Check(t, is.Equal(re.Kind, NoAnswer))
	assert.Check(t, took < 5*time.Second, "took %s", took)
}

// A registry asking for a wait longer than the caller's deadline leaves
// at once with its answer, not a timeout: a busy registry is not one that
// did not answer.
func TestRetryStopsAtTheDeadline(t *testing.T) {
	requests := new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Retry-After", "25")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	t.Cleanup(srv.Close)
	rt := quick(5).RoundTripper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	err := sendThrough(ctx, rt, http.MethodGet, srv.URL+"/v2/")
	assert.Check(t, time.Since(start) < time.Second, "waited %s", time.Since(start))
	var terr *transport.Error
	assert.Assert(t, errors.As(err, &terr), "%v", err)
	assert.Check(t, is.Equal(terr.StatusCode, http.StatusTooManyRequests))
	assert.Check(t, is.Equal(requests.Load(), int32(1)))
}

// A request the transport gave up on, besides the one whose error Retry
// judges (a probe after a refusal worth another try), does not stop Retry.
func TestRetryJudgesItsOwnError(t *testing.T) {
	url, _ := failing(t, http.StatusServiceUnavailable)
	o := quick(3)
	rt := o.RoundTripper()
	refused := &transport.Error{StatusCode: http.StatusBadRequest, Errors: []transport.Diagnostic{{Code: transport.ManifestBlobUnknownErrorCode}}}
	attempts := 0
	err := Retry(context.Background(), o.Backoff, func(err error) bool { return errors.Is(err, refused) }, func(ctx context.Context, _ int) error {
		attempts++
		_ = sendThrough(ctx, rt, http.MethodHead, url+"/v2/x/manifests/v1") // the probe, given up on
		return refused
	})
	assert.Check(t, is.Equal(attempts, 3))
	assert.Check(t, is.Equal(Tries(err), 3))
}
