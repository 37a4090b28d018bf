package serve

import (
	"slices"
	"strings"
	"time"
)

// Pruning removes blobs, which a running build may be reusing or
// writing, so it runs under the gc lock alone. After a build, prune asks
// the pruner, which takes the lock as soon as no build holds it; while
// builds run back to back it waits at most pruneWait, then holds new
// builds back until those running end, so the bounds hold under any load.
const (
	pruneWait  = 30 * time.Second
	pruneRetry = 100 * time.Millisecond
)

// servedGrace is how long an image whose manifest was served is kept
// whatever the bounds: the client fetches its blobs next, which must not
// be pruned under it. The bounds may be exceeded meanwhile; the pruner
// runs again as the grace ends.
const servedGrace = 10 * time.Minute

// prune asks for the storage to be brought within its bounds, soon and
// off the request that asks.
func (s *Server) prune() {
	if !s.bounded() {
		return
	}
	s.startPruner.Do(func() {
		s.building.Add(1)
		go s.pruner()
	})
	select {
	case s.pruneAsked <- struct{}{}:
	default: // asked already: the next round sees this image too
	}
}

// pruner prunes once per ask until the server stops.
func (s *Server) pruner() {
	defer s.building.Done()
	for {
		select {
		case <-s.life.Done():
			return
		case <-s.pruneAsked:
		}
		deadline := time.Now().Add(s.pruneWait)
		for !s.gc.TryLock() {
			if time.Now().After(deadline) {
				s.gc.Lock()
				break
			}
			select {
			case <-s.life.Done():
				return
			case <-time.After(pruneRetry):
			}
		}
		again := s.pruneLocked()
		s.gc.Unlock()
		if again > 0 {
			// One timer, moved: a round a minute under steady load
			// would otherwise leave a timer each.
			if s.pruneAgain == nil {
				s.pruneAgain = time.AfterFunc(again, s.prune)
			} else {
				s.pruneAgain.Reset(again)
			}
		}
	}
}

// pruneNow prunes at once, waiting for the builds running.
func (s *Server) pruneNow() {
	s.gc.Lock()
	defer s.gc.Unlock()
	s.pruneLocked()
}

// pruneLocked drops the images pulled least recently while more than
// MaxImages are kept, or the storage holds more than MaxBytes; the image
// pulled last (or just built) stays, and so do those served within the
// grace. It returns how long until the first of those still over the
// bounds leaves the grace (0: none). The caller holds the gc lock.
func (s *Server) pruneLocked() (again time.Duration) {
	dropped, blobs := 0, 0
	for s.over() {
		s.mu.Lock()
		victim, oldest, last := "", int64(-1), s.lastUsed()
		var wait time.Duration
		for k := range s.built {
			if left := s.grace - time.Since(s.servedAt[k]); k != last && left > 0 {
				if wait == 0 || left < wait {
					wait = left
				}
				continue
			}
			if k != last && (oldest < 0 || s.used[k] < oldest || (s.used[k] == oldest && k < victim)) {
				victim, oldest = k, s.used[k]
			}
		}
		if victim != "" {
			s.dropLocked(victim)
		}
		keep := map[string]bool{}
		for k := range s.built {
			keep[k] = true
		}
		s.mu.Unlock()
		if victim == "" {
			// Only the image pulled last, and those in their grace, are left.
			again = wait
			break
		}
		n, err := s.store.prune(func(name string) bool { return keep[name] })
		if err != nil {
			s.o.Log.Error("prune failed", "error", err.Error())
			return
		}
		dropped++
		blobs += n
		s.metrics.pruned.Inc()
	}
	if dropped > 0 {
		s.o.Log.Info("pruned", "images", dropped, "blobs", blobs)
	}
	return again
}

// lastUsed is the key pulled last ("" for none); s.mu is held.
func (s *Server) lastUsed() string {
	last, at := "", int64(-1)
	for k := range s.built {
		if s.used[k] > at || (s.used[k] == at && k < last) {
			last, at = k, s.used[k]
		}
	}
	return last
}

// over tells whether the storage holds more than its bounds allow.
func (s *Server) over() bool {
	s.mu.Lock()
	n := len(s.built)
	s.mu.Unlock()
	if s.o.MaxImages > 0 && n > s.o.MaxImages {
		return true
	}
	return s.o.MaxBytes > 0 && s.store.size() > s.o.MaxBytes
}

// recallPulls orders the images kept by when the store last recorded a
// pull of each (the oldest first; by key where it keeps none), so that
// pruning after a restart drops those pulled least recently, as before it.
func (s *Server) recallPulls() {
	keys := make([]string, 0, len(s.built))
	at := map[string]time.Time{}
	for k, d := range s.built {
		keys = append(keys, k)
		at[k] = s.store.pulledAt(d)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if c := at[a].Compare(at[b]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	for _, k := range keys {
		s.clock++
		s.used[k] = s.clock
	}
}
