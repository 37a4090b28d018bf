// Package popularity reads, writes and computes popularity data in Nixery's
// format: a JSON object mapping a package name (a store path's base name
// without its hash) to the number of store paths that reference it.
//
// Layering strategies use it to keep widely shared packages in layers of
// their own, where other images are most likely to reuse them.
package popularity

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Data maps a package name, as returned by Name, to its reference count.
type Data map[string]int

// Name turns a store path into the name popularity data is keyed by:
// "/nix/store/<hash>-openssl-3.0.13" becomes "openssl-3.0.13".
// A path without a hash prefix is returned as its base name.
func Name(storePath string) string {
	base := storePath[strings.LastIndexByte(storePath, '/')+1:]
	if i := strings.IndexByte(base, '-'); i > 0 {
		return base[i+1:]
	}
	return base
}

// Load reads popularity data. Anything but a JSON object of names to
// non-negative integers is an error.
func Load(r io.Reader) (Data, error) {
	var d Data
	dec := json.NewDecoder(r)
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("popularity data is not a JSON object of package names to counts: %w", err)
	}
	for name, n := range d {
		if n < 0 {
			return nil, fmt.Errorf("popularity data: %q has a negative count %d", name, n)
		}
	}
	return d, nil
}

// Compute counts, for every package name, the distinct store paths that
// reference it (self references excluded) across closures: refs maps each
// store path to the store paths it references. This is what Nixery's
// popcount computes over a whole channel.
func Compute(refs map[string][]string) Data {
	d := Data{}
	for from, tos := range refs {
		seen := map[string]bool{}
		for _, to := range tos {
			if to == from || seen[to] {
				continue
			}
			seen[to] = true
			d[Name(to)]++
		}
	}
	return d
}

// Write writes d as indented JSON with sorted keys, so the same data gives
// the same file.
func Write(w io.Writer, d Data) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(d) // encoding/json sorts map keys
}
