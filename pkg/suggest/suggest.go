// Package suggest finds the names closest to a misspelled one, for "did
// you mean" hints: flags of a command, attributes of nixpkgs.
package suggest

import (
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/agnivade/levenshtein"
)

// MaxDistance is the largest edit distance Closest accepts for a word of
// n characters: one typo in a short word, up to three in a long one, so
// that a hint is a likely fix rather than any name of the same length.
func MaxDistance(n int) int {
	switch {
	case n <= 4:
		return 1
	case n <= 8:
		return 2
	}
	return 3
}

// Closest returns up to limit candidates within MaxDistance of word,
// nearest first and alphabetically among equals. Case is ignored when
// measuring, so "Hello" finds "hello" (distance 0).
func Closest(word string, candidates []string, limit int) []string {
	type scored struct {
		name string
		d    int
	}
	lw := strings.ToLower(word)
	n := utf8.RuneCountInString(word)
	max := MaxDistance(n)
	var found []scored
	seen := map[string]bool{}
	for _, c := range candidates {
		if c == word || seen[c] {
			continue
		}
		seen[c] = true
		// The distance is at least the difference in length: skip the
		// many names that cannot be close before measuring.
		if diff := utf8.RuneCountInString(c) - n; diff > max || diff < -max {
			continue
		}
		if d := levenshtein.ComputeDistance(lw, strings.ToLower(c)); d <= max {
			found = append(found, scored{c, d})
		}
	}
	sort.Slice(found, func(i, j int) bool {
		if found[i].d != found[j].d {
			return found[i].d < found[j].d
		}
		return found[i].name < found[j].name
	})
	var out []string
	for i := 0; i < len(found) && i < limit; i++ {
		out = append(out, found[i].name)
	}
	return out
}

// Hint is " (did you mean a or b?)" for the given names, or "" for none.
func Hint(names []string) string {
	switch len(names) {
	case 0:
		return ""
	case 1:
		return " (did you mean " + names[0] + "?)"
	}
	return " (did you mean " + strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1] + "?)"
}
