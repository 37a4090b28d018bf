//go:build integration

package build

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/testenv"
	"github.com/nixery-action/nixery-action/pkg/publish"
)

// cancelOnWrite is a destination that cancels the build as its index is
// about to be written, so that the cancellation meets the push itself.
type cancelOnWrite struct {
	publish.Destination
	cancel context.CancelFunc
}

func (d cancelOnWrite) Write(ctx context.Context, idx v1.ImageIndex, refs publish.Attachments) (*publish.Result, error) {
	d.cancel()
	return d.Destination.Write(ctx, idx, refs)
}

// A cancelled build says so as an error a caller can test for, whichever
// phase the cancellation meets: Nix, packing, or the publish.
func TestBuildCancelledIsCanceled(t *testing.T) {
	host := testenv.StartRegistry(t)
	for _, phase := range []string{"nix", "packing", "push"} {
		t.Run(phase, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			reg := publish.NewRegistry(mustTarget(t, host+"/cancel/"+phase, "v1"), publish.Options{})
			req := request(t, reg, 6)
			var o Options
			switch phase {
			case "nix":
				req.Nixpkgs = slowFlake(t)
				req.Platforms = req.Platforms[:1]
				time.AfterFunc(2*time.Second, cancel)
			case "packing":
				req.Platforms = req.Platforms[:1] // past Nix when packing starts
				var once sync.Once
				o.Progress = func(Event) { once.Do(cancel) }
			case "push":
				req.Destination = cancelOnWrite{Destination: reg, cancel: cancel}
			}
			_, err := Build(ctx, req, o)
			assert.Assert(t, errors.Is(err, context.Canceled), "%v", err)
			if phase == "push" {
				assert.Error(t, err, "push to "+host+"/cancel/push cancelled") // as the CLI prints it
			}
		})
	}
}
