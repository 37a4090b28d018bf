package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nixery-action/nixery-action/pkg/archive"
)

// listFlag collects a list from a flag that may be given several times,
// each time with items separated by newlines (and by commas when split
// is set), as action inputs write them.
type listFlag struct {
	items  []string
	commas bool
	// ifEmpty, when set, refuses a value with no items (--platforms ""
	// would otherwise mean the default), saying this.
	ifEmpty string
}

func (l *listFlag) String() string { return strings.Join(l.items, ",") }

func (l *listFlag) Set(v string) error {
	sep := func(r rune) bool { return r == '\n' || (l.commas && r == ',') }
	n := len(l.items)
	for _, item := range strings.FieldsFunc(v, sep) {
		if item = strings.TrimSpace(item); item != "" {
			l.items = append(l.items, item)
		}
	}
	if l.ifEmpty != "" && len(l.items) == n {
		return errors.New(l.ifEmpty)
	}
	return nil
}

// levelFlag is --level: 0, its default, means no level given, so a 0
// given is refused here. compressionOptions checks the top of the range,
// which depends on the compression.
type levelFlag int

func (l *levelFlag) String() string { return strconv.Itoa(int(*l)) }

func (l *levelFlag) Set(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil {
		return errors.New("parse error")
	}
	if n < 1 {
		return fmt.Errorf("use 1 to %d (gzip) or 1 to %d (zstd)", archive.Gzip.MaxLevel(), archive.Zstd.MaxLevel())
	}
	*l = levelFlag(n)
	return nil
}

// keyValues parses KEY=VALUE items into a map, for labels and annotations.
func keyValues(what string, items []string) (map[string]string, error) {
	if len(items) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, item := range items {
		k, v, ok := strings.Cut(item, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, usagef("%s %q is not KEY=VALUE", what, item)
		}
		m[strings.TrimSpace(k)] = v
	}
	return m, nil
}

// commandLine parses an entrypoint or cmd: a JSON array (exec form, as in
// a Dockerfile) or words separated by spaces. Those words are not a
// shell's: a quote or backslash in one would reach the image as written
// and break it only when run, so it is refused, pointing to the array.
func commandLine(what, v string) ([]string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	if strings.HasPrefix(v, "[") {
		var words []string
		if err := json.Unmarshal([]byte(v), &words); err != nil {
			return nil, usagef("%s %s is not a JSON array of strings: %v", what, v, err)
		}
		return words, nil
	}
	words := strings.Fields(v)
	for _, w := range words {
		if strings.ContainsAny(w, `"'\`) {
			return nil, usagef(`%s has the word %q, with a quote or backslash, which words separated by spaces keep as written: give a JSON array instead, e.g. ["bash","-c","echo hello; id"]`, what, w)
		}
	}
	return words, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// compressionUsage explains --compression in build's and pack's --help.
var compressionUsage = fmt.Sprintf("layer compression `ALGO[:LEVEL]`: gzip (levels 1 to 9, default %d) or zstd (OCI tar+zstd layers, levels 1 to %d as zstd's own, default %d): "+
	"zstd layers are smaller and faster to pack and to pull, but Docker before 23.0 (and other old clients) cannot pull them, so gzip is the default",
	archive.DefaultLevel, archive.MaxZstdLevel, archive.DefaultZstdLevel)

// compressionOptions reads --compression ALGO[:LEVEL] and --level N (the
// older flag, the level of either compression; given both, they must
// agree).
func compressionOptions(compression string, level int) (archive.Compression, int, error) {
	c, l, err := archive.ParseCompression(compression)
	if err != nil {
		return "", 0, usagef("--compression: %v", err)
	}
	if level == 0 {
		return c, l, nil
	}
	if level < 1 || level > c.MaxLevel() {
		return "", 0, usagef("--level %d is out of range: use 1 to %d", level, c.MaxLevel())
	}
	if l != 0 && l != level {
		return "", 0, usagef("--level %d and --compression %s give two levels: give one", level, compression)
	}
	return c, level, nil
}

// takes says what a flag whose value did not parse (the flag package's
// bare "parse error") takes: the kind of value, and the first clause of
// its usage, which gives its range.
func takes(fl *flag.Flag) (kind, what string) {
	kind = "a whole number"
	if g, ok := fl.Value.(flag.Getter); ok {
		switch g.Get().(type) {
		case time.Duration:
			kind = "a duration such as 30m or 90s"
		case float64:
			kind = "a number"
		}
	}
	_, usage := flag.UnquoteUsage(fl)
	return kind, firstClause(usage)
}

// firstClause is usage up to its first ": " or "; " outside parentheses.
func firstClause(usage string) string {
	depth := 0
	for i, r := range usage {
		switch {
		case r == '(':
			depth++
		case r == ')':
			depth--
		case depth == 0 && (r == ':' || r == ';') && strings.HasPrefix(usage[i+1:], " "):
			return usage[:i]
		}
	}
	return usage
}
