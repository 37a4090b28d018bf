// Package deps pins the design's libraries in go.mod while the packages that
// use them are written. Delete it once every import below has a real user.
package deps

import (
	_ "github.com/google/go-containerregistry/pkg/authn"
	_ "github.com/google/go-containerregistry/pkg/name"
	_ "github.com/google/go-containerregistry/pkg/registry"
	_ "github.com/google/go-containerregistry/pkg/v1"
	_ "github.com/google/go-containerregistry/pkg/v1/empty"
	_ "github.com/google/go-containerregistry/pkg/v1/layout"
	_ "github.com/google/go-containerregistry/pkg/v1/mutate"
	_ "github.com/google/go-containerregistry/pkg/v1/partial"
	_ "github.com/google/go-containerregistry/pkg/v1/remote"
	_ "github.com/google/go-containerregistry/pkg/v1/remote/transport"
	_ "github.com/google/go-containerregistry/pkg/v1/static"
	_ "github.com/google/go-containerregistry/pkg/v1/tarball"
	_ "github.com/google/go-containerregistry/pkg/v1/types"
	_ "github.com/google/go-containerregistry/pkg/v1/validate"
	_ "github.com/klauspost/pgzip"
	_ "github.com/sethvargo/go-githubactions"
	_ "gonum.org/v1/gonum/graph/flow"
	_ "gonum.org/v1/gonum/graph/simple"
	_ "gotest.tools/v3/assert"
	_ "gotest.tools/v3/assert/cmp"
	_ "gotest.tools/v3/fs"
	_ "gotest.tools/v3/golden"
	_ "gotest.tools/v3/icmd"
)
