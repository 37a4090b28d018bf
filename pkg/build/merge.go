package build

import (
	"context"
	"time"

	"github.com/nixery-action/nixery-action/pkg/publish"
)

// Merge puts one index over images that per-platform builds pushed by
// digest (publish.Merge: the index goes to each of targets), and reports
// it as the Result of one build of
// every platform would be: the same index, with no build details (nothing
// was locked, packed or read from a cache). Writing to the registry is
// all a merge does, so its time is both its Upload and its Total. With
// push false nothing is written, and there is no
// Upload time, as for a build that pushes nothing.
func Merge(ctx context.Context, targets []publish.Target, digests []string, o publish.Options, push bool) (*Result, error) {
	start := time.Now()
	res, err := publish.Merge(ctx, targets, digests, o, push)
	if err != nil {
		return nil, err
	}
	took := time.Since(start).Seconds()
	timings := Timings{Upload: took, Total: took}
	if !push {
		timings.Upload = 0
	}
	return &Result{SchemaVersion: SchemaVersion, Result: res, Timings: timings}, nil
}
