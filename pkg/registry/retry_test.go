package registry

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// script is a server that answers each request with the next of its
// steps, and notes what it was sent.
type script struct {
	mu     sync.Mutex
	steps  []func(w http.ResponseWriter)
	bodies []string
	times  []time.Time
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	n := len(s.bodies)
	s.bodies = append(s.bodies, string(body))
	s.times = append(s.times, time.Now())
	s.mu.Unlock()
	if n < len(s.steps) {
		s.steps[n](w)
		return
	}
	fmt.Fprint(w, "ok")
}

// sent is what the server was sent, and when.
func (s *script) sent() ([]string, []time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bodies...), append([]time.Time(nil), s.times...)
}

func (s *script) tries() int {
	b, _ := s.sent()
	return len(b)
}

func status(code int, header ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		http.Error(w, "no", code)
	}
}

func drop(w http.ResponseWriter) {
	if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
		conn.Close()
	}
}

// cut sends half an answer and drops the connection.
func cut(w http.ResponseWriter) {
	w.Header().Set("Content-Length", "100")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(strings.Repeat("x", 50)))
	w.(http.Flusher).Flush()
	drop(w)
}

func quick(steps int) Options {
	return Options{Backoff: remote.Backoff{Duration: 5 * time.Millisecond, Factor: 2, Steps: steps}}
}

func do(t *testing.T, rt http.RoundTripper, method, url, body string) (*http.Response, string, error) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = bytes.NewReader([]byte(body))
	}
	req, err := http.NewRequest(method, url, rd)
	assert.NilError(t, err)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	return resp, string(got), err
}

// Transient failures are tried again, the body sent afresh each time,
// until an answer comes.
func TestRetryTransient(t *testing.T) {
	for name, step := range map[string]func(http.ResponseWriter){
		"500": status(500), "502": status(502), "503": status(503), "504": status(504),
		"408": status(408), "429": status(429), "drop": drop, "cut short": cut,
	} {
		t.Run(name, func(t *testing.T) {
			s := &script{steps: []func(http.ResponseWriter){step, step}}
			srv := httptest.NewServer(s)
			defer srv.Close()
			resp, body, err := do(t, quick(5).RoundTripper(), http.MethodPut, srv.URL+"/v2/x/manifests/v1", "the manifest")
			assert.NilError(t, err)
			assert.Equal(t, resp.StatusCode, 200)
			assert.Equal(t, body, "ok")
			bodies, _ := s.sent()
			assert.DeepEqual(t, bodies, []string{"the manifest", "the manifest", "the manifest"})
		})
	}
}

// What another try will not mend is not tried again: a refusal, a
// missing thing, and a chunk of an upload (the registry may have
// appended it before the answer was lost; the upload starts over).
func TestRetryNotTransient(t *testing.T) {
	for _, c := range []struct {
		method string
		step   func(http.ResponseWriter)
		code   int
	}{
		{http.MethodGet, status(401), 401},
		{http.MethodGet, status(404), 404},
		{http.MethodPut, status(400), 400},
		{http.MethodPatch, status(502), 502},
	} {
		s := &script{steps: []func(http.ResponseWriter){c.step, c.step}}
		srv := httptest.NewServer(s)
		resp, _, err := do(t, quick(5).RoundTripper(), c.method, srv.URL+"/v2/x/blobs/uploads/1", "chunk")
		srv.Close()
		assert.NilError(t, err)
		assert.Equal(t, resp.StatusCode, c.code)
		assert.Check(t, s.tries() == 1, "%s answered %d: tried %d times", c.method, c.code, s.tries())
	}
	// A dropped PATCH is not sent again either.
	s := &script{steps: []func(http.ResponseWriter){drop}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	_, _, err := do(t, quick(5).RoundTripper(), http.MethodPatch, srv.URL+"/v2/x/blobs/uploads/1", "chunk")
	assert.Assert(t, err != nil)
	assert.Check(t, is.Equal(s.tries(), 1))
}

// The tries are bounded: after Steps, the last answer stands.
func TestRetryBoundedTries(t *testing.T) {
	s := &script{steps: []func(http.ResponseWriter){status(503), status(503), status(503), status(503), status(503)}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	resp, _, err := do(t, quick(3).RoundTripper(), http.MethodGet, srv.URL+"/v2/", "")
	assert.NilError(t, err)
	assert.Equal(t, resp.StatusCode, 503)
	assert.Check(t, is.Equal(s.tries(), 3))
}

// A Retry-After that fits in the retry time is waited for; one that does
// not ends the tries at once, with the registry's answer.
func TestRetryAfter(t *testing.T) {
	s := &script{steps: []func(http.ResponseWriter){status(429, "Retry-After", "1")}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	resp, _, err := do(t, quick(5).RoundTripper(), http.MethodGet, srv.URL+"/v2/", "")
	assert.NilError(t, err)
	assert.Equal(t, resp.StatusCode, 200)
	_, times := s.sent()
	assert.Assert(t, is.Len(times, 2))
	assert.Check(t, times[1].Sub(times[0]) >= time.Second, "waited %s, asked for 1s", times[1].Sub(times[0]))

	s = &script{steps: []func(http.ResponseWriter){status(429, "Retry-After", "3600")}}
	srv2 := httptest.NewServer(s)
	defer srv2.Close()
	resp, _, err = do(t, quick(5).RoundTripper(), http.MethodGet, srv2.URL+"/v2/", "")
	assert.NilError(t, err)
	assert.Equal(t, resp.StatusCode, 429)
	assert.Check(t, is.Equal(s.tries(), 1))

	assert.Equal(t, retryAfter("7"), 7*time.Second)
	assert.Equal(t, retryAfter("soon"), time.Duration(0))
	assert.Assert(t, retryAfter(time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)) > 59*time.Minute)
}

// A cancelled request stops waiting at once.
func TestRetryCancelled(t *testing.T) {
	s := &script{steps: []func(http.ResponseWriter){status(503), status(503)}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v2/", nil)
	assert.NilError(t, err)
	o := Options{Backoff: remote.Backoff{Duration: time.Hour, Factor: 1, Steps: 3}, RetryTime: 2 * time.Hour}
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	_, err = o.RoundTripper().RoundTrip(req)
	assert.ErrorIs(t, err, context.Canceled)
}
