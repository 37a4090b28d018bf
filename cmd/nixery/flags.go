package main

import (
	"encoding/json"
	"fmt"
	"strings"
)

// listFlag collects a list from a flag that may be given several times,
// each time with items separated by newlines (and by commas when split
// is set), as action inputs write them.
type listFlag struct {
	items  []string
	commas bool
}

func (l *listFlag) String() string { return strings.Join(l.items, ",") }

func (l *listFlag) Set(v string) error {
	sep := func(r rune) bool { return r == '\n' || (l.commas && r == ',') }
	for _, item := range strings.FieldsFunc(v, sep) {
		if item = strings.TrimSpace(item); item != "" {
			l.items = append(l.items, item)
		}
	}
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
// a Dockerfile) or words separated by spaces.
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
	return strings.Fields(v), nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
