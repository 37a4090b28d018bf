package parallel

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

// Do runs at most jobs at a time, returns the first error, cancels
// the jobs running then and starts no more.
func TestParallel(t *testing.T) {
	var running, most, started atomic.Int32
	boom := errors.New("boom")
	err := Do(context.Background(), 3, 100, func(ctx context.Context, i int) error {
		started.Add(1)
		n := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		if i == 10 {
			return boom
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
			return nil
		}
	})
	assert.Equal(t, err, boom)
	assert.Equal(t, most.Load(), int32(3))
	assert.Assert(t, started.Load() < 20, "%d started after the error", started.Load())

	// A cancelled caller: its error, and nothing runs.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	started.Store(0)
	err = Do(ctx, 3, 10, func(context.Context, int) error { started.Add(1); return nil })
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, started.Load(), int32(0))
}
