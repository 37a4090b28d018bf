package build

import (
	"sync"
	"time"
)

// Stage is where a layer is.
type Stage int

const (
	Packing Stage = iota // being packed: Done of Total bytes
	Packed               // packed into a blob (by this platform or another)
	Reused               // taken from the registry cache
)

func (p Stage) String() string {
	return [...]string{"packing", "packed", "reused"}[p]
}

// Event tells a progress display how a platform's layer goes. Uploads are
// told by the destination (publish.Options.OnUpload), by blob digest.
type Event struct {
	Platform string // as requested, e.g. linux/amd64
	Layer    int    // 1-based, in the image's order
	Layers   int    // how many the image has
	Stage    Stage
	// Done and Total count uncompressed bytes while Packing; Total is
	// the plan's estimate (0 when unknown, as for the customisation).
	Done, Total int64
	// Digest and Size are the blob's, once Packed or Reused.
	Digest string
	Size   int64
}

// ProgressEvery is the most often a layer's Packing events come: a
// display can take it as the interval its rates are measured over.
const ProgressEvery = 200 * time.Millisecond

// reporter sends one layer's events.
type reporter struct {
	send func(Event)
	base Event

	mu   sync.Mutex
	last time.Time
}

func (b *builder) reporter(platform string, layer, layers int, total int64) *reporter {
	return &reporter{send: b.opts.Progress, base: Event{Platform: platform, Layer: layer, Layers: layers, Total: total}}
}

// packing reports n more bytes packed, at most every progressEvery.
func (r *reporter) packing() func(n int) {
	if r == nil || r.send == nil {
		return nil
	}
	var done int64
	return func(n int) {
		done += int64(n)
		r.mu.Lock()
		now := time.Now()
		if now.Sub(r.last) < ProgressEvery {
			r.mu.Unlock()
			return
		}
		r.last = now
		r.mu.Unlock()
		e := r.base
		e.Stage, e.Done = Packing, done
		r.send(e)
	}
}

// finished reports the layer's blob.
func (r *reporter) finished(stage Stage, digest string, size int64) {
	if r == nil || r.send == nil {
		return
	}
	e := r.base
	e.Stage, e.Digest, e.Size, e.Done = stage, digest, size, r.base.Total
	r.send(e)
}
