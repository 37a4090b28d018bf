// Package parallel runs a loop's bodies a bounded number at a time, and
// stops at the first error.
package parallel

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// Do runs f for 0..n-1, at most jobs at a time, and returns the first
// error; the others are then cancelled through ctx.
func Do(ctx context.Context, jobs, n int, f func(ctx context.Context, i int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for i := range n {
		if gctx.Err() != nil {
			break // an error, or the caller's cancellation
		}
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err // waited for a slot past the end
			}
			return f(gctx, i)
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}
