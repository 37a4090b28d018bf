package layereval

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/nixery-action/nixery-action/pkg/layers"
	"github.com/nixery-action/nixery-action/pkg/popularity"
)

// Sharing is how well the layers of plans, all pulled by one host, share:
// the bytes of the distinct store paths over the bytes of the distinct
// layers, a layer being known by its key (its exact set of paths), as a
// registry keeps it. It is 1 when no path is pulled twice; size gives a
// store path's bytes.
func Sharing(plans []*layers.LayerPlan, size func(path string) uint64) float64 {
	return sharing(plans, size, func(_, key string) string { return key })
}

// ChainSharing is Sharing as a host's layer store counts it (docker,
// containerd's snapshots, podman): a layer is kept once per chain of
// layers up to it, so two images share only a common prefix of their
// layers, where a registry shares every layer of the same key.
func ChainSharing(plans []*layers.LayerPlan, size func(path string) uint64) float64 {
	return sharing(plans, size, func(below, key string) string { return below + key })
}

// sharing is the bytes of the distinct store paths of plans over the
// bytes of their distinct layers, a layer known by what id makes of the
// identity of the layers below it ("" for the first) and its key.
func sharing(plans []*layers.LayerPlan, size func(path string) uint64, id func(below, key string) string) float64 {
	paths := map[string]bool{}
	seen := map[string]bool{}
	var pathBytes, layerBytes uint64
	for _, p := range plans {
		below := ""
		for _, l := range p.Layers {
			below = id(below, l.Key)
			if seen[below] {
				continue
			}
			seen[below] = true
			layerBytes += l.Size
			for _, sp := range l.Paths {
				if !paths[sp] {
					paths[sp] = true
					pathBytes += size(sp)
				}
			}
		}
	}
	if layerBytes == 0 {
		return 1
	}
	return float64(pathBytes) / float64(layerBytes)
}

// UpdateCost is what a host holding the image planned as from pulls to
// get the image planned as to: the bytes of to's layers whose keys from
// lacks, and the bytes of to's store paths that from lacks (what changed).
func UpdateCost(from, to *layers.LayerPlan, size func(path string) uint64) (pulled, changed uint64) {
	have := map[string]bool{}
	old := map[string]bool{}
	for _, l := range from.Layers {
		have[l.Key] = true
		for _, p := range l.Paths {
			old[p] = true
		}
	}
	for _, l := range to.Layers {
		if !have[l.Key] {
			pulled += l.Size
		}
		for _, p := range l.Paths {
			if !old[p] {
				changed += size(p)
			}
		}
	}
	return pulled, changed
}

// Score is how a strategy did on a corpus at one budget.
type Score struct {
	Strategy   string
	Budget     int
	Popularity bool // whether popularity data was given
	// Sharing is Sharing over the plans of every image of the corpus
	// (the update variants left out).
	Sharing float64
	// ChainSharing is ChainSharing over the same plans: what a host's
	// layer store, which shares only common prefixes, makes of them.
	ChainSharing float64
	// UpdateOverhead is the mean, over every (image, updated library)
	// pair where the image holds the library, of the bytes pulled over
	// the bytes that changed (see UpdateCost): 1 is perfect.
	UpdateOverhead float64
	Pairs          int // (image, library) pairs in UpdateOverhead
	// UpdateBytes is the bytes pulled over the bytes changed, summed
	// over the same pairs before dividing.
	UpdateBytes float64
	// OwnUpdateBytes is UpdateBytes for the updates of each image's
	// requested packages (its applications, which the libraries' updates
	// leave out), over OwnPairs (image, package) pairs.
	OwnUpdateBytes float64
	OwnPairs       int
	Layers         float64 // mean layers per image
}

// Bench is a corpus made ready for scoring: every image and each of its
// update variants as a closure graph, built once for every strategy.
type Bench struct {
	images  []benchImage
	sizes   map[string]uint64 // every store path of every graph
	updates []string          // the updated libraries' store paths, as the images hold them
}

type benchImage struct {
	graph    *layers.Graph
	variants []*layers.Graph // one per updated library the image holds
	own      []*layers.Graph // one per requested package, updated
}

// NewBench builds the graphs of c's images and their update variants.
func NewBench(c *Corpus) (*Bench, error) {
	w := newWorld(c)
	b := &Bench{sizes: map[string]uint64{}}
	for _, lib := range c.Updates {
		b.updates = append(b.updates, w.storePaths([]string{lib}, "")[lib])
	}
	for _, roots := range c.Images {
		// graph is the image with updated changed, its sizes noted.
		graph := func(updated string) (*layers.Graph, error) {
			g, sizes, err := w.graph(roots, updated)
			for p, s := range sizes {
				b.sizes[p] = s
			}
			return g, err
		}
		g, err := graph("")
		if err != nil {
			return nil, err
		}
		img := benchImage{graph: g}
		for u, lib := range c.Updates {
			if _, held := g.Index(b.updates[u]); !held {
				continue
			}
			v, err := graph(lib)
			if err != nil {
				return nil, err
			}
			img.variants = append(img.variants, v)
		}
		for _, root := range roots {
			v, err := graph(root)
			if err != nil {
				return nil, err
			}
			img.own = append(img.own, v)
		}
		b.images = append(b.images, img)
	}
	return b, nil
}

// Score plans every image and update variant with a strategy and
// measures the plans.
func (b *Bench) Score(strategy string, budget int, pop popularity.Data) (Score, error) {
	s := Score{Strategy: strategy, Budget: budget, Popularity: pop != nil}
	opts := layers.Options{Strategy: strategy, Budget: budget, Popularity: pop}
	size := func(p string) uint64 { return b.sizes[p] }

	type result struct {
		plan            *layers.LayerPlan
		ratios          []float64
		pulled, changed uint64
		ownPairs        int
		ownPulled       uint64
		ownChanged      uint64
		err             error
	}
	results := make([]result, len(b.images))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, img := range b.images {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			r := &results[i]
			if r.plan, r.err = layers.Plan(img.graph, opts); r.err != nil {
				return
			}
			for _, v := range img.variants {
				vp, err := layers.Plan(v, opts)
				if err != nil {
					r.err = err
					return
				}
				pulled, changed := UpdateCost(r.plan, vp, size)
				r.ratios = append(r.ratios, float64(pulled)/float64(changed))
				r.pulled += pulled
				r.changed += changed
			}
			for _, v := range img.own {
				vp, err := layers.Plan(v, opts)
				if err != nil {
					r.err = err
					return
				}
				pulled, changed := UpdateCost(r.plan, vp, size)
				r.ownPulled += pulled
				r.ownChanged += changed
				r.ownPairs++
			}
		}()
	}
	wg.Wait()

	var plans []*layers.LayerPlan
	var ratios float64
	var ownPulled, ownChanged uint64
	var layerCount int
	var pulled, changed uint64
	for _, r := range results {
		pulled += r.pulled
		changed += r.changed
		if r.err != nil {
			return s, fmt.Errorf("scoring %s at budget %d: %w", strategy, budget, r.err)
		}
		plans = append(plans, r.plan)
		layerCount += len(r.plan.Layers)
		for _, x := range r.ratios {
			ratios += x
			s.Pairs++
		}
		s.OwnPairs += r.ownPairs
		ownPulled += r.ownPulled
		ownChanged += r.ownChanged
	}
	s.Sharing = Sharing(plans, size)
	s.ChainSharing = ChainSharing(plans, size)
	if s.Pairs > 0 {
		s.UpdateOverhead = ratios / float64(s.Pairs)
		s.UpdateBytes = float64(pulled) / float64(changed)
	}
	if ownChanged > 0 {
		s.OwnUpdateBytes = float64(ownPulled) / float64(ownChanged)
	}
	s.Layers = float64(layerCount) / float64(len(b.images))
	return s, nil
}
