// Package faultproxy is a test proxy in front of a real registry that
// fails a share of the requests the way networks and registries do: 5xx
// answers, 429 with Retry-After, dropped connections, stalls and answers
// cut short after the registry did the work. It also records the
// sequence of writes it passed on, to check the order of a push.
package faultproxy

import (
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
)

// Kinds are the faults the proxy injects, chosen evenly.
var Kinds = []string{"500", "502", "503", "429", "drop", "stall", "truncate"}

// Proxy forwards to a registry, failing Rate of the requests.
type Proxy struct {
	Host string // host:port to push to

	upstream *httputil.ReverseProxy

	mu     sync.Mutex
	rate   float64
	rng    *rand.Rand
	faults map[string]int
	failed map[string][]time.Time // when each request was failed, within FaultWindow
	total  int
	// uploadFaults are the faults of blob uploads' requests.
	uploadFaults int
	writes       []string // "METHOD /path" of writes the registry saw
}

// The proxy fails one request at most MaxFaults times within
// FaultWindow, whoever sends it: fewer than a client's tries (5 by
// default), which these tests' clients spend within the window (a
// backoff of 20 ms doubling, 1 s for a 429). So a test measures recovery
// from faults, not the odds of one request drawing a fault at every try
// (at 15%, one in 13,000 requests: about one failed push in ten fault
// tests, without the bound). A request is its method and URL. A blob
// upload started over is a new session at a new URL, so it is not held
// by the bound; one blob in about 7,000 loses all five of its uploads
// (a fault on the PATCH of each) at 20%, one in 30,000 at 15%: within
// the one failed run in 20 the fault tests allow.
const (
	MaxFaults   = 3
	FaultWindow = 5 * time.Second
)

// Start starts a proxy to registry (host:port) that fails rate of the
// requests, chosen by a generator seeded with seed, and one request at
// most MaxFaults times within FaultWindow; it stops with the test.
func Start(t testing.TB, registry string, rate float64, seed int64) *Proxy {
	target, err := url.Parse("http://" + registry)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{upstream: httputil.NewSingleHostReverseProxy(target), rate: rate, rng: rand.New(rand.NewSource(seed)), faults: map[string]int{}, failed: map[string][]time.Time{}}
	p.upstream.ErrorLog = nil
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	p.Host = strings.TrimPrefix(srv.URL, "http://")
	return p
}

// SetRate changes the share of failed requests.
func (p *Proxy) SetRate(rate float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rate = rate
}

func (p *Proxy) pick(r *http.Request) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total++
	key := r.Method + " " + r.URL.RequestURI()
	now := time.Now()
	recent := p.failed[key]
	for len(recent) > 0 && now.Sub(recent[0]) > FaultWindow {
		recent = recent[1:]
	}
	p.failed[key] = recent
	if p.rng.Float64() >= p.rate || len(recent) >= MaxFaults {
		return ""
	}
	kind := Kinds[p.rng.Intn(len(Kinds))]
	p.faults[kind]++
	if strings.Contains(r.URL.Path, "/blobs/uploads/") {
		p.uploadFaults++
	}
	if kind != "stall" { // a stall is slow, but answered
		p.failed[key] = append(recent, now)
	}
	return kind
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch kind := p.pick(r); kind {
	case "":
		p.forward(w, r)
	case "500", "502", "503":
		code := map[string]int{"500": 500, "502": 502, "503": 503}[kind]
		http.Error(w, "injected fault", code)
	case "429":
		w.Header().Set("Retry-After", "1")
		http.Error(w, "slow down", http.StatusTooManyRequests)
	case "drop":
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close()
		}
	case "stall":
		time.Sleep(300 * time.Millisecond)
		p.forward(w, r)
	case "truncate":
		// The registry does the work, but the answer is cut short.
		rec := httptest.NewRecorder()
		p.forward(rec, r)
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

// forward passes r to the registry, noting a write that it accepted.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	p.upstream.ServeHTTP(sw, r)
	if r.Method != http.MethodGet && r.Method != http.MethodHead && sw.code < 300 {
		p.mu.Lock()
		p.writes = append(p.writes, r.Method+" "+r.URL.Path)
		p.mu.Unlock()
	}
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Writes returns the writes the registry accepted so far, in order, and
// forgets them.
func (p *Proxy) Writes() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	w := p.writes
	p.writes = nil
	return w
}

// Report says how many requests went through and which faults were made.
func (p *Proxy) Report() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var kinds []string
	n := 0
	for k, v := range p.faults {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, v))
		n += v
	}
	sort.Strings(kinds)
	return fmt.Sprintf("%d requests, %d faults (%s; %d in blob uploads)", p.total, n, strings.Join(kinds, ", "), p.uploadFaults)
}

// UploadFaults is how many faults the proxy injected into blob uploads'
// requests (their POST, PATCH and PUT).
func (p *Proxy) UploadFaults() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.uploadFaults
}

// Faults is how many faults were made.
func (p *Proxy) Faults() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, v := range p.faults {
		n += v
	}
	return n
}

// Concurrently runs f(0..n-1), four at a time: runs through the proxy
// wait on backoffs and Retry-After far more than they work.
func Concurrently(n int, f func(i int)) {
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			f(i)
		})
	}
	wg.Wait()
}
