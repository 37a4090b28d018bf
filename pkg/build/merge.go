package build

import (
	"context"
	"time"

	"github.com/nixery-action/nixery-action/pkg/publish"
)

// Merge puts one index over images that per-platform builds pushed by
// digest (publish.Merge), and reports it as the Result of one build of
// every platform would be: the same index, with no build details (nothing
// was locked, packed or read from a cache). Writing to the registry is
// all a merge does, so its time is both its Upload and its Total.
func Merge(ctx context.Context, t publish.Target, digests []string, o publish.Options) (*Result, error) {
	start := time.Now()
	res, err := publish.Merge(ctx, t, digests, o)
	if err != nil {
		return nil, err
	}
	took := time.Since(start).Seconds()
	return &Result{SchemaVersion: SchemaVersion, Result: res, Timings: Timings{Upload: took, Total: took}}, nil
}
