package build

import (
	"sort"
	"sync"
	"time"
)

// Timings are the seconds a build spent, per phase and, for the phases
// each platform runs on its own, per platform ("linux/arm64"). Platforms
// run concurrently, so Total is less than the sum of the phases. Phases
// that did not run are left out of the JSON form.
type Timings struct {
	Total float64 `json:"total"`
	// Lock is locking nixpkgs (once, for every platform).
	Lock float64 `json:"lock,omitempty"`
	// Cache is reading the registry cache (while Nix works).
	Cache float64 `json:"cache,omitempty"`
	// Verify is checking cached layers against the store paths, summed
	// over the layers.
	Verify   float64            `json:"verify,omitempty"`
	Nix      map[string]float64 `json:"nix,omitempty"`
	Layering map[string]float64 `json:"layering,omitempty"`
	Packing  map[string]float64 `json:"packing,omitempty"`
	// Upload is writing the image to its destination, with its SBOM
	// and provenance referrers (written before the tags); absent when it
	// went nowhere.
	Upload float64 `json:"upload,omitempty"`
}

// The phases timings records.
const (
	phaseLock     = "lock"
	phaseCache    = "cache"
	phaseVerify   = "verify"
	phaseNix      = "nix"
	phaseLayering = "layering"
	phasePacking  = "packing"
	phaseUpload   = "upload"
)

// timings adds up how long each phase took, per platform where it has one.
type timings struct {
	begin time.Time
	mu    sync.Mutex
	d     map[[2]string]time.Duration // {phase, platform}
}

func newTimings() *timings { return &timings{begin: time.Now(), d: map[[2]string]time.Duration{}} }

// start begins timing a phase of a platform ("" for none); the returned
// function ends it.
func (t *timings) start(phase, platform string) func() {
	begin := time.Now()
	return func() {
		t.mu.Lock()
		t.d[[2]string{phase, platform}] += time.Since(begin)
		t.mu.Unlock()
	}
}

// result is the timings so far, Total up to now.
func (t *timings) result() Timings {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := Timings{Total: time.Since(t.begin).Seconds()}
	perPlatform := func(m *map[string]float64, platform string, s float64) {
		if *m == nil {
			*m = map[string]float64{}
		}
		(*m)[platform] = s
	}
	for k, d := range t.d {
		s := d.Seconds()
		switch k[0] {
		case phaseLock:
			r.Lock = s
		case phaseCache:
			r.Cache = s
		case phaseVerify:
			r.Verify = s
		case phaseUpload:
			r.Upload = s
		case phaseNix:
			perPlatform(&r.Nix, k[1], s)
		case phaseLayering:
			perPlatform(&r.Layering, k[1], s)
		case phasePacking:
			perPlatform(&r.Packing, k[1], s)
		}
	}
	return r
}

// Phase is one line of Timings: a phase, its platform ("" for none) and
// its seconds.
type Phase struct {
	Name     string
	Platform string
	Seconds  float64
}

// Phases lists the phases that ran in the order a build runs them,
// platforms sorted within a phase, and the total last.
func (t Timings) Phases() []Phase {
	var out []Phase
	one := func(name string, s float64) {
		if s > 0 {
			out = append(out, Phase{Name: name, Seconds: s})
		}
	}
	each := func(name string, m map[string]float64) {
		platforms := make([]string, 0, len(m))
		for p := range m {
			platforms = append(platforms, p)
		}
		sort.Strings(platforms)
		for _, p := range platforms {
			out = append(out, Phase{Name: name, Platform: p, Seconds: m[p]})
		}
	}
	one(phaseLock, t.Lock)
	one(phaseCache, t.Cache)
	each(phaseNix, t.Nix)
	each(phaseLayering, t.Layering)
	one(phaseVerify, t.Verify)
	each(phasePacking, t.Packing)
	one(phaseUpload, t.Upload)
	return append(out, Phase{Name: "total", Seconds: t.Total})
}
