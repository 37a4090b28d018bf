// Package popularity reads, writes and computes popularity data in Nixery's
// format: a JSON object mapping a package name (a store path's base name
// without its hash) to the number of store paths that reference it.
//
// Layering strategies use it to keep widely shared packages in layers of
// their own, where other images are most likely to reuse them. The package
// knows nothing of closure graphs: Compute takes plain reference lists.
package popularity

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"

	"github.com/nixery-action/nixery-action/internal/limit"
	"github.com/nixery-action/nixery-action/pkg/storepath"
)

// MaxBytes bounds the popularity data Load reads. Data for all of nixpkgs
// (some 100,000 names) is about 4 MiB; the bound leaves sixteen times that.
const MaxBytes = 64 << 20

// Data maps a package name, as returned by storepath.Name, to its reference count.
type Data map[string]int

// Load reads popularity data: one JSON object of package names to
// whole, non-negative counts. Anything else (a list, null, fractions,
// negative or quoted counts, a name given twice, data after the object)
// is an error naming what is wrong, and so is data past MaxBytes, which
// is not read further.
func Load(r io.Reader) (Data, error) {
	d, err := load(limit.Reader(r, MaxBytes))
	var le *limit.Error
	if errors.As(err, &le) {
		return nil, fmt.Errorf("popularity data: larger than %s, the bound on popularity data (MaxBytes; all of nixpkgs' is about 4 MiB): give the output of nixery popcount", limit.Size(MaxBytes))
	}
	return d, err
}

func load(r io.Reader) (Data, error) {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	const want = "popularity data is not a JSON object of package names to counts"
	tok, err := dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: the input is empty", want)
		}
		return nil, fmt.Errorf("%s: %w", want, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("%s: it is %s", want, describe(tok))
	}
	data := Data{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", want, err)
		}
		name := tok.(string) // object keys are always strings
		tok, err = dec.Token()
		if err != nil {
			return nil, fmt.Errorf("popularity data: count of %q: %w", name, err)
		}
		num, ok := tok.(json.Number)
		if !ok {
			return nil, fmt.Errorf("popularity data: the count of %q is %s, not a number", name, describe(tok))
		}
		n, err := strconv.ParseInt(num.String(), 10, 0)
		switch {
		case err != nil && errors.Is(err, strconv.ErrRange):
			return nil, fmt.Errorf("popularity data: the count of %q, %s, is too large", name, num)
		case err != nil:
			return nil, fmt.Errorf("popularity data: the count of %q, %s, is not a whole number", name, num)
		case n < 0:
			return nil, fmt.Errorf("popularity data: the count of %q is negative (%d)", name, n)
		}
		if _, dup := data[name]; dup {
			return nil, fmt.Errorf("popularity data: %q is given twice", name)
		}
		data[name] = int(n)
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("%s: %w", want, err)
	}
	var le *limit.Error
	switch _, err := dec.Token(); {
	case errors.Is(err, io.EOF):
	case errors.As(err, &le):
		return nil, err
	default:
		return nil, fmt.Errorf("popularity data: unexpected data after the JSON object")
	}
	return data, nil
}

// describe names a JSON token for an error message.
func describe(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '[' {
			return "a list"
		}
		return "an object"
	case string:
		return strconv.Quote(v) + " (a string)"
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(v)
	default:
		return fmt.Sprint(v)
	}
}

// Compute counts, for every package name, the distinct store paths that
// reference a path of that name (self references excluded), across any
// number of closures: each maps a store path to the store paths it
// references. A path found in several closures counts once. This is what
// Nixery's popcount computes over a whole channel.
func Compute(closures ...map[string][]string) Data {
	refs := map[string]map[string]bool{} // referrer -> names it references
	for _, c := range closures {
		for from, tos := range c {
			names := refs[from]
			if names == nil {
				names = map[string]bool{}
				refs[from] = names
			}
			for _, to := range tos {
				if to != from {
					names[storepath.Name(to)] = true
				}
			}
		}
	}
	d := Data{}
	for _, names := range refs {
		for n := range names {
			d[n]++
		}
	}
	return d
}

// Write writes d as a JSON object with one name per line, sorted, so the
// same data always gives the same bytes. Nil data is written as {}.
func Write(w io.Writer, d Data) error {
	var negative []string
	for n, c := range d {
		if c < 0 {
			negative = append(negative, n)
		}
	}
	if len(negative) > 0 {
		sort.Strings(negative)
		return fmt.Errorf("write popularity data: the count of %q is negative (%d)", negative[0], d[negative[0]])
	}
	if d == nil {
		d = Data{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(d) // encoding/json sorts map keys
}

// Digest is the sha256 of d as Write writes it ("sha256:<hex>"), the
// same for the same data whatever file it came from.
func Digest(d Data) (string, error) {
	h := sha256.New()
	if err := Write(h, d); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
