package push

import (
	"context"
	"fmt"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// faultProxy sits in front of a real registry and fails a share of the
// requests the way networks and registries do.
type faultProxy struct {
	upstream *httputil.ReverseProxy
	rate     float64

	mu     sync.Mutex
	rng    *rand.Rand
	faults map[string]int
	total  int
}

var faultKinds = []string{"500", "502", "503", "429", "drop", "stall", "truncate"}

func newFaultProxy(t *testing.T, registry string, rate float64, seed int64) (*faultProxy, string) {
	target, err := url.Parse("http://" + registry)
	assert.NilError(t, err)
	p := &faultProxy{upstream: httputil.NewSingleHostReverseProxy(target), rate: rate, rng: rand.New(rand.NewSource(seed)), faults: map[string]int{}}
	p.upstream.ErrorLog = nil
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return p, strings.TrimPrefix(srv.URL, "http://")
}

func (p *faultProxy) pick() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total++
	if p.rng.Float64() >= p.rate {
		return ""
	}
	kind := faultKinds[p.rng.Intn(len(faultKinds))]
	p.faults[kind]++
	return kind
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch kind := p.pick(); kind {
	case "":
		p.upstream.ServeHTTP(w, r)
	case "500", "502", "503":
		code := map[string]int{"500": 500, "502": 502, "503": 503}[kind]
		http.Error(w, "injected fault", code)
	case "429":
		w.Header().Set("Retry-After", "1")
		http.Error(w, "slow down", http.StatusTooManyRequests)
	case "drop":
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	case "stall":
		time.Sleep(300 * time.Millisecond)
		p.upstream.ServeHTTP(w, r)
	case "truncate":
		// The registry does the work, but the answer is cut short.
		rec := httptest.NewRecorder()
		p.upstream.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		body := rec.Body.Bytes()
		w.Header().Set("Content-Length", fmt.Sprint(len(body)+10))
		w.WriteHeader(rec.Code)
		w.Write(body[:len(body)/2])
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close()
		}
	}
}

func (p *faultProxy) report() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var kinds []string
	n := 0
	for k, v := range p.faults {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, v))
		n += v
	}
	sort.Strings(kinds)
	return fmt.Sprintf("%d requests, %d faults (%s)", p.total, n, strings.Join(kinds, ", "))
}

// TestPushThroughFaults: with 15% of requests failing in every way the
// proxy knows, pushes complete (at least 19 of 20) or fail with a clear
// error, and no tag ever names an index whose blobs are not all there.
func TestPushThroughFaults(t *testing.T) {
	testenv.Require(t, "docker-registry", "skopeo")
	registry := testenv.StartRegistry(t)
	proxy, front := newFaultProxy(t, registry, 0.15, 1)
	const runs = 20
	ok := 0
	for i := 0; i < runs; i++ {
		idx := testIndex(t, fmt.Sprintf("fault-%d", i), amd64, arm64)
		target := mustTarget(t, front+"/faults/image", fmt.Sprintf("run-%d", i), "latest")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		_, err := Push(ctx, target, idx, Options{Backoff: remote.Backoff{Duration: 20 * time.Millisecond, Factor: 2, Steps: 5}})
		cancel()
		if err == nil {
			ok++
		} else {
			msg := err.Error()
			assert.Assert(t, !strings.Contains(msg, "\n") && !strings.Contains(msg, "goroutine"), "unclear error: %q", msg)
			t.Logf("run %d failed: %v", i, err)
		}
		testenv.CheckTags(t, registry, "faults/image")
	}
	t.Logf("%d of %d pushes completed; %s", ok, runs, proxy.report())
	assert.Assert(t, ok >= 19, "only %d of %d pushes completed", ok, runs)
	assert.Assert(t, testenv.CheckTags(t, registry, "faults/image") >= ok)
	// skopeo, reading the registry directly, sees both platforms.
	raw := run(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+registry+"/faults/image:latest")
	assert.DeepEqual(t, platformsOf(t, raw), []string{"linux/amd64", "linux/arm64/v8"})
}
