package registry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

// A registry that stops reading an upload part-way does not hold the
// push for ever: past RequestTimeout without taking more of the body,
// the request ends with a timeout, which callers retry or report.
func TestUploadStallEnds(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.CopyN(io.Discard, r.Body, 1<<20)
		<-release // reads no more, answers nothing
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	rt := Options{RequestTimeout: 300 * time.Millisecond}.RoundTripper()
	req, err := http.NewRequest(http.MethodPatch, srv.URL+"/v2/x/blobs/uploads/1", io.LimitReader(zeros{}, 256<<20))
	assert.NilError(t, err)
	done := make(chan error, 1)
	go func() {
		resp, err := rt.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		var se *stallError
		assert.Assert(t, errors.As(err, &se), "%v", err)
		assert.Check(t, is.ErrorContains(err, "took no more of the upload for 300ms"))
		assert.Check(t, IsTimeout(err) && Transient(err), "a stall is not retried: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the upload still hangs")
	}
}

// A body the registry takes at its own pace, longer than the stall
// timer in all, and an answer read after the request returns, are not
// cut by the timer.
func TestUploadSlowButMoving(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 64<<10)
		for {
			time.Sleep(10 * time.Millisecond) // about 6 MB/s
			if _, err := r.Body.Read(buf); err != nil {
				break
			}
		}
		w.WriteHeader(http.StatusAccepted)
		w.(http.Flusher).Flush()
		time.Sleep(2500 * time.Millisecond) // longer than the timer, after the answer began
		io.WriteString(w, strings.Repeat("x", 1000))
	}))
	t.Cleanup(srv.Close)
	rt := Options{RequestTimeout: 2 * time.Second}.RoundTripper()
	req, err := http.NewRequest(http.MethodPatch, srv.URL+"/v2/x/blobs/uploads/1", io.LimitReader(zeros{}, 8<<20))
	assert.NilError(t, err)
	resp, err := rt.RoundTrip(req)
	assert.NilError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	assert.NilError(t, err)
	assert.Equal(t, len(body), 1000)
}

// A registry that takes a request and then never answers it (past the
// push check, mid-push) is tried again, as a timeout is, and then said to
// have stopped answering, not to be out of reach: the network reached it.
func TestStoppedAnsweringExplained(t *testing.T) {
	release := make(chan struct{})
	var puts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		puts.Add(1)
		io.Copy(io.Discard, r.Body)
		<-release // the manifest is taken; no answer comes
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	repo, err := name.NewRepository(strings.TrimPrefix(srv.URL, "http://")+"/o/n", name.Insecure)
	assert.NilError(t, err)

	backoff := remote.Backoff{Duration: time.Millisecond, Factor: 1, Steps: 2}
	rt := Options{RequestTimeout: 300 * time.Millisecond, Backoff: backoff}.RoundTripper()
	// As a push sends a manifest: the transport's tries, under Retry.
	err = Retry(context.Background(), backoff, Transient, func(ctx context.Context, _ int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, srv.URL+"/v2/o/n/manifests/v1", strings.NewReader("{}"))
		if err != nil {
			return err
		}
		resp, err := rt.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	})
	assert.Assert(t, err != nil)
	assert.Check(t, is.Equal(puts.Load(), int32(2)), "tried again as a timeout")
	// A stream (a blob's upload) is not sent again whole for a silence.
	assert.Check(t, !Transient(err), "a silence is transient for a stream")
	assert.Check(t, Transient(&stallError{host: "h", idle: time.Second}), "a stall is not")
	got := explain(err, repo, Login{})
	assert.Check(t, is.ErrorContains(got, "stopped answering (no answer within 300ms, 2 times)"))
	assert.Check(t, !strings.Contains(got.Error(), "cannot reach"), "%v", got)
}
