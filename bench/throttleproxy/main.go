// Command throttleproxy is a reverse proxy that limits the bytes it
// forwards, in both directions together, to a rate: a registry behind it
// behaves like one at the end of a network link of that bandwidth. The
// benchmark scripts put it in front of the local registry.
//
//	throttleproxy -listen 127.0.0.1:PORT -upstream http://127.0.0.1:5000 -rate 60000000
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sync"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	upstream := flag.String("upstream", "", "URL of the server to forward to")
	rate := flag.Float64("rate", 60e6, "bytes per second, both directions together")
	flag.Parse()
	u, err := url.Parse(*upstream)
	if err != nil || u.Host == "" {
		fmt.Fprintf(os.Stderr, "throttleproxy: -upstream %q is not a URL\n", *upstream)
		os.Exit(2)
	}
	link := &link{rate: *rate}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.FlushInterval = -1
	proxy.ModifyResponse = func(r *http.Response) error {
		r.Body = &throttled{r: r.Body, link: link}
		return nil
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = &throttled{r: r.Body, link: link}
		}
		proxy.ServeHTTP(w, r)
	})
	log.Fatal(http.ListenAndServe(*listen, handler))
}

// link is the shared bandwidth: each read reserves the time its bytes
// take at the rate, after every earlier reservation.
type link struct {
	mu   sync.Mutex
	rate float64
	free time.Time // when the link is next idle
}

// slack is how far the link's schedule may fall behind the clock: sleeps
// overshoot (by a millisecond or more under load), and a link that
// forgot the time lost to them would run well below its rate.
const slack = 50 * time.Millisecond

func (l *link) wait(n int) {
	l.mu.Lock()
	now := time.Now()
	if l.free.Before(now.Add(-slack)) {
		l.free = now.Add(-slack)
	}
	l.free = l.free.Add(time.Duration(float64(n) / l.rate * float64(time.Second)))
	until := l.free
	l.mu.Unlock()
	time.Sleep(time.Until(until))
}

// throttled reads at most 64 KiB at a time, each after its share of the
// link.
type throttled struct {
	r    io.ReadCloser
	link *link
}

func (t *throttled) Read(p []byte) (int, error) {
	if len(p) > 64<<10 {
		p = p[:64<<10]
	}
	n, err := t.r.Read(p)
	if n > 0 {
		t.link.wait(n)
	}
	return n, err
}

func (t *throttled) Close() error { return t.r.Close() }
