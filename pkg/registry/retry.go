package registry

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// The retry policy of every registry request a build makes (blobs,
// manifests, referrers, tags, the cache record, tokens, the cache reads
// and downloads): one transport, below the registry library and the
// project's own reader, so that no request path goes without it.
const (
	// DefaultRetryTime bounds the waiting between the tries of one
	// request: a registry that is still failing after it has failed.
	DefaultRetryTime = 30 * time.Second
	// maxBuffered is the largest answer read whole inside the transport,
	// so that an answer cut short is tried again like a failed request:
	// manifests, indexes, referrer lists, tokens and error bodies.
	// Larger answers (layer blobs) stream; their readers start over.
	maxBuffered = MaxManifestSize
)

// retryTransport tries a request again when it failed transiently: 408,
// 429 (after the Retry-After the registry asks for, when it fits in the
// time left), 5xx, a dropped or reset connection, a timeout of the
// request, or an answer cut short. A request whose body cannot be sent
// again (a streamed blob upload) is tried once: its caller starts the
// upload over instead.
type retryTransport struct {
	base    http.RoundTripper
	backoff remote.Backoff
	budget  time.Duration // the most time spent waiting between tries
}

// retryStatus tells whether a registry's answer says to try again.
func retryStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	wait := t.backoff.Duration
	var waited time.Duration
	for try := 1; ; try++ {
		attempt := req
		if try > 1 {
			var err error
			if attempt, err = rewind(req); err != nil {
				return nil, err
			}
		}
		resp, err := t.base.RoundTrip(attempt)
		if err == nil {
			resp, err = buffer(req, resp)
		}
		again, after := t.again(req, resp, err)
		if !again {
			return resp, err
		}
		delay := jitter(wait, t.backoff.Jitter)
		if after > delay {
			delay = after
		}
		if try >= t.backoff.Steps || waited+delay > t.budget || pastDeadline(ctx, delay) {
			// The tries are spent, or the registry asks for more
			// time than is left (or than the caller gives): its
			// answer, not a timeout, is the error, and no layer
			// above tries this again.
			gaveUp(ctx, try)
			return resp, err
		}
		cause := failure(resp, err)
		if resp != nil {
			resp.Body.Close()
		}
		notify(ctx, Retrying{Cause: cause, Wait: delay, Next: try + 1, Tries: t.backoff.Steps})
		if err := Sleep(ctx, delay); err != nil {
			return nil, err
		}
		waited += delay
		if t.backoff.Factor > 0 {
			wait = time.Duration(float64(wait) * t.backoff.Factor)
		}
	}
}

// pastDeadline tells whether waiting d would outlast ctx.
func pastDeadline(ctx context.Context, d time.Duration) bool {
	dl, ok := ctx.Deadline()
	return ok && time.Until(dl) < d
}

// failure says on one line what went wrong with a try: the registry's
// answer (its status and error codes), or the request's error. It reads
// (a bounded part of) the answer's body.
func failure(resp *http.Response, err error) string {
	if err != nil {
		return OneLine(err)
	}
	resp.Body = readCloser{io.LimitReader(resp.Body, maxQuoted*8), resp.Body}
	return failureOf(transport.CheckError(resp))
}

// again tells whether a try's outcome is worth another, and the wait the
// registry asked for.
func (t *retryTransport) again(req *http.Request, resp *http.Response, err error) (bool, time.Duration) {
	if req.Context().Err() != nil {
		return false, 0
	}
	if req.Method == http.MethodPatch || (req.Body != nil && req.Body != http.NoBody && req.GetBody == nil) {
		// A chunk of an upload, which the registry may have appended
		// before the answer was lost, or a stream: uploadBlob starts
		// the upload over instead.
		return false, 0
	}
	if err != nil {
		return !permanent(err), 0
	}
	if !retryStatus(resp.StatusCode) {
		return false, 0
	}
	return true, retryAfter(resp.Header.Get("Retry-After"))
}

// rewind is req, to be sent again with a fresh copy of its body.
func rewind(req *http.Request) (*http.Request, error) {
	r := req.Clone(req.Context())
	if req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		r.Body = body
	}
	return r, nil
}

var errTruncated = errors.New("the registry's answer was cut short")

// permanent tells the failures of a request that another try will not
// mend, or that should stop a build at once: a cancelled build, a name
// that does not resolve, a connection refused (no registry there: a
// wrong address is told within a second), a certificate or TLS handshake
// refused, too many redirects. Any other failure to get an answer (a
// connection reset, closed or timed out, an answer cut short) is the
// network's, and passes.
func permanent(err error) bool {
	var dns *net.DNSError
	var unknownCA x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var host x509.HostnameError
	var record tls.RecordHeaderError
	var verify *tls.CertificateVerificationError
	var redirect *redirectError
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		(errors.As(err, &dns) && !dns.IsTemporary && !dns.IsTimeout) ||
		errors.As(err, &unknownCA) || errors.As(err, &invalid) || errors.As(err, &host) ||
		errors.As(err, &record) || errors.As(err, &verify) || errors.As(err, &redirect)
}

// buffer reads a small answer whole, so that one cut short is a failure
// of this try (retried) rather than of its reader later. Blob downloads
// of unknown length stream, as do answers larger than maxBuffered.
func buffer(req *http.Request, resp *http.Response) (*http.Response, error) {
	if req.Method == http.MethodHead || req.Method == http.MethodPatch || resp.Body == nil || resp.Body == http.NoBody {
		return resp, nil
	}
	if resp.StatusCode == http.StatusRequestedRangeNotSatisfiable {
		// A final answer, whose Content-Length the CNCF registry gives
		// as the blob's, not its short body's: no try would mend it.
		return resp, nil
	}
	n := resp.ContentLength
	if n > maxBuffered || (n < 0 && strings.Contains(req.URL.Path, "/blobs/")) {
		return resp, nil
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBuffered+1))
	if err == nil && n >= 0 && int64(len(raw)) != n {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("%s %s: %w (%d bytes of %d): %w", req.Method, req.URL.Redacted(), errTruncated, len(raw), n, err)
	}
	if int64(len(raw)) > maxBuffered {
		// Longer than announced nowhere: let the reader see it all.
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(raw), resp.Body), resp.Body}
		return resp, nil
	}
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	return resp, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

func jitter(d time.Duration, j float64) time.Duration {
	if j <= 0 {
		return d
	}
	return d + time.Duration(rand.Float64()*j*float64(d))
}

// Retry runs attempt (try counts from 1) until it succeeds, fails in a
// way again does not accept, or backoff's tries are spent, waiting the
// backoff between tries. It is the retry of what the transport cannot
// replay request by request: a streamed upload, a download read whole.
// It is the only retry of a failure: when the transport below gave up
// on a request of the attempt (its own tries were spent), Retry does not
// start over, so that tries never multiply. attempt must make its
// requests with the ctx it is given. An error after more than one try
// says how many (see Tries).
func Retry(ctx context.Context, backoff remote.Backoff, again func(error) bool, attempt func(ctx context.Context, try int) error) error {
	op := &operation{}
	ctx = context.WithValue(ctx, operationKey{}, op)
	wait := backoff.Duration
	for try := 1; ; try++ {
		op.spent.Store(0)
		err := attempt(ctx, try)
		if err == nil {
			return nil
		}
		// Only when err is what the transport retries: a request
		// the attempt made besides (a probe after a refusal) may be
		// the one given up on.
		if spent := op.spent.Load(); spent > 0 && transportRetries(err) {
			return tried(int(spent), err)
		}
		if !again(err) || ctx.Err() != nil {
			return err
		}
		if try >= backoff.Steps {
			return tried(try, err)
		}
		delay := jitter(wait, backoff.Jitter)
		notify(ctx, Retrying{Cause: failureOf(err), Wait: delay, Next: try + 1, Tries: backoff.Steps})
		if err := Sleep(ctx, delay); err != nil {
			return err
		}
		if backoff.Factor > 0 {
			wait = time.Duration(float64(wait) * backoff.Factor)
		}
	}
}

// failureOf says on one line what went wrong with an attempt.
func failureOf(err error) string {
	var terr *transport.Error
	if errors.As(err, &terr) {
		return "registry answered " + oneLine(terr)
	}
	return OneLine(err)
}

// operation is one call of Retry, which the transport below tells when
// it gave up on a request: after how many tries.
type operation struct{ spent atomic.Int32 }

type operationKey struct{}

// gaveUp tells the operation of ctx, if any, that the transport stopped
// trying a request after tries.
func gaveUp(ctx context.Context, tries int) {
	if op, ok := ctx.Value(operationKey{}).(*operation); ok && op != nil {
		op.spent.Store(int32(tries))
	}
}

// Aside is ctx for a request made beside a Retry attempt's own (a check
// after its failure): the transport's giving up on it is not the
// attempt's, whose count of tries its error keeps.
func Aside(ctx context.Context) context.Context {
	return context.WithValue(ctx, operationKey{}, (*operation)(nil))
}

// Retrying is a failed try about to be made again.
type Retrying struct {
	Cause string        // what failed, on one line
	Wait  time.Duration // the wait before the next try
	Next  int           // the try about to be made (from 2)
	Tries int           // the most that will be made
}

func (r Retrying) String() string {
	wait := r.Wait.Round(time.Second)
	if r.Wait < time.Second {
		wait = r.Wait.Round(time.Millisecond)
	}
	return fmt.Sprintf("%s; retrying in %s (%d/%d)", r.Cause, wait, r.Next, r.Tries)
}

type noticeKey struct{}

// OnRetry returns ctx, whose requests (and calls of Retry) tell notice
// of each try they are about to make again, before waiting for it.
func OnRetry(ctx context.Context, notice func(Retrying)) context.Context {
	return context.WithValue(ctx, noticeKey{}, notice)
}

func notify(ctx context.Context, r Retrying) {
	if notice, ok := ctx.Value(noticeKey{}).(func(Retrying)); ok && notice != nil {
		notice(r)
	}
}

// triedError is a failure that persisted over several tries.
type triedError struct {
	tries int
	err   error
}

func (e *triedError) Error() string { return e.err.Error() }
func (e *triedError) Unwrap() error { return e.err }

func tried(tries int, err error) error { return &triedError{tries: tries, err: err} }

// Tries tells how many times Retry, or the transport below it, tried
// what failed with err before giving up: 0 when err is no failure they
// gave up on (it was not worth another try).
func Tries(err error) int {
	var te *triedError
	if errors.As(err, &te) {
		return te.tries
	}
	return 0
}

// Sleep waits d, or until ctx ends (its error then).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
