package build

import (
	"sync"
	"time"
)

// timings adds up how long each phase took ("nix x86_64-linux",
// "packing aarch64-linux", "upload", ...).
type timings struct {
	mu sync.Mutex
	d  map[string]time.Duration
}

func newTimings() *timings { return &timings{d: map[string]time.Duration{}} }

// start begins timing a phase; the returned function ends it.
func (t *timings) start(phase string) func() {
	begin := time.Now()
	return func() {
		t.mu.Lock()
		t.d[phase] += time.Since(begin)
		t.mu.Unlock()
	}
}

func (t *timings) seconds() map[string]float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]float64{}
	for k, v := range t.d {
		out[k] = v.Seconds()
	}
	return out
}
