// Package closuregen makes synthetic Nix closures, the same for the same
// seed, in the shape of `nix path-info --json` (the list form), for the
// layering tests and benchmarks.
package closuregen

import (
	"fmt"
	"math/rand"
	"sort"
)

// Info is one store path as `nix path-info --json` prints it.
type Info struct {
	Path        string   `json:"path,omitempty"`
	NarSize     uint64   `json:"narSize"`
	ClosureSize uint64   `json:"closureSize,omitempty"`
	References  []string `json:"references"`
}

// Dense makes a closure of n paths shaped like a big image's: each path
// references up to 6 earlier ones, anywhere before it, and a few base
// libraries (the first 5 paths: a libc, a compiler runtime, zlib, ...)
// are referenced by most paths. NAR sizes are long-tailed with the odd
// huge path; cacert and iana-etc are there as Nixery adds them. This is
// the shape on which issue 13 measured the default strategy as
// super-linear. Closure sizes are left out (ParseGraph computes them).
func Dense(seed int64, n int) []Info {
	rng := rand.New(rand.NewSource(seed))
	infos := make([]Info, n)
	for i := range infos {
		name := fmt.Sprintf("pkg%d-1.%d", i, rng.Intn(10))
		switch i {
		case 5:
			name = "nss-cacert-3.98"
		case 6:
			name = "iana-etc-20240318"
		}
		size := uint64(1000 + rng.ExpFloat64()*3e6)
		if rng.Intn(50) == 0 {
			size = uint64(50e6 + rng.Float64()*400e6)
		}
		infos[i] = Info{Path: fmt.Sprintf("/nix/store/%032x-%s", rng.Uint64(), name), NarSize: size}
		if i < 7 {
			continue
		}
		var refs []int
		for b := 0; b < 5; b++ {
			if rng.Float64() < 0.9/float64(b+1) {
				refs = append(refs, b)
			}
		}
		for k := rng.Intn(7); k > 0; k-- {
			refs = append(refs, rng.Intn(i))
		}
		sort.Ints(refs)
		for k, j := range refs {
			if k == 0 || j != refs[k-1] {
				infos[i].References = append(infos[i].References, infos[j].Path)
			}
		}
	}
	return infos
}

// Flat makes a closure of n paths with no depth: one root that references
// n-1 leaves of long-tailed sizes, as an environment of many independent
// packages would be.
func Flat(seed int64, n int) []Info {
	rng := rand.New(rand.NewSource(seed))
	infos := make([]Info, n)
	infos[0] = Info{Path: fmt.Sprintf("/nix/store/%032x-env", rng.Uint64()), NarSize: 1000}
	for i := 1; i < n; i++ {
		infos[i] = Info{Path: fmt.Sprintf("/nix/store/%032x-leaf%d-1.0", rng.Uint64(), i), NarSize: uint64(1000 + rng.ExpFloat64()*3e6)}
		infos[0].References = append(infos[0].References, infos[i].Path)
	}
	return infos
}
