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
		infos[i] = node(rng, i, 5, 6)
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

// Local makes a closure of n paths shaped like nixpkgs ones: a few base
// libraries most paths use, long-tailed NAR sizes with the odd huge path
// (a compiler, a font set), cacert and iana-etc, and a handful of roots
// that everything else hangs from; a path mostly references the ones
// just before it, and a quarter of the paths list themselves, as Nix
// does. Closure sizes are left out.
func Local(seed int64, n int) []Info {
	rng := rand.New(rand.NewSource(seed))
	infos := make([]Info, n)
	referenced := make([]bool, n)
	refs := make([]map[int]bool, n)
	for i := range infos {
		infos[i] = node(rng, i, 1, 2)
		// Paths reference lower-numbered ones only, so the graph is a
		// DAG; the lowest ones are the base libraries.
		refs[i] = map[int]bool{}
		if i == 0 {
			continue
		}
		for k := rng.Intn(6); k > 0; k-- {
			var j int
			if rng.Intn(3) == 0 {
				j = rng.Intn(min(i, 8))
			} else {
				j = i - 1 - rng.Intn(min(i, 40))
			}
			refs[i][j] = true
			referenced[j] = true
		}
	}
	// All but the last few paths are used by something later, so the
	// closure has few roots, like an image's.
	for j := 0; j < n-n/50-1; j++ {
		if !referenced[j] {
			refs[j+1+rng.Intn(n-j-1)][j] = true
		}
	}
	for i := range infos {
		for j := range refs[i] {
			infos[i].References = append(infos[i].References, infos[j].Path)
		}
		sort.Strings(infos[i].References)
		if rng.Intn(4) == 0 {
			infos[i].References = append(infos[i].References, infos[i].Path) // Nix lists self references
		}
	}
	return infos
}

// node makes path i: its name (cacert and iana-etc at the indexes given,
// as Nixery adds them) and a long-tailed NAR size with the odd huge path.
func node(rng *rand.Rand, i, cacert, ianaEtc int) Info {
	name := fmt.Sprintf("pkg%d-1.%d", i, rng.Intn(10))
	switch i {
	case cacert:
		name = "nss-cacert-3.98"
	case ianaEtc:
		name = "iana-etc-20240318"
	}
	size := uint64(1000 + rng.ExpFloat64()*3e6)
	if rng.Intn(50) == 0 {
		size = uint64(50e6 + rng.Float64()*400e6)
	}
	return Info{Path: fmt.Sprintf("/nix/store/%032x-%s", rng.Uint64(), name), NarSize: size}
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
