package layers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/nixery-action/nixery-action/pkg/storepath"
	"strings"
)

// unwrapVersioned returns the path infos of the wrapper that `nix
// path-info --json --json-format 2` (and 3) print, Nix 2.33 and later:
//
//	{"info": {"<hash>-<name>": {...}, ...}, "storeDir": "/nix/store", "version": 2}
//
// (src/nix/path-info.cc, pathInfoToJSON). Anything else is returned as it
// is: the keys of the older object are store paths, never "info",
// "storeDir" or "version".
func unwrapVersioned(data []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return data, nil
	}
	tok, err := dec.Token()
	if key, _ := tok.(string); err != nil || (key != "info" && key != "storeDir" && key != "version") {
		return data, nil
	}
	var w struct {
		Version  *int            `json:"version"`
		StoreDir *string         `json:"storeDir"`
		Info     json.RawMessage `json:"info"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("closure graph: invalid versioned path-info JSON: %w", err)
	}
	switch {
	case w.Version == nil:
		return nil, fmt.Errorf("closure graph: path-info JSON has \"info\" but no \"version\"")
	case *w.Version != 2 && *w.Version != 3:
		return nil, fmt.Errorf("closure graph: path-info JSON format version %d is not supported (1, 2 and 3 are): print it with --json-format 2", *w.Version)
	case w.StoreDir != nil && strings.TrimSuffix(*w.StoreDir, "/")+"/" != storepath.Dir:
		return nil, fmt.Errorf("closure graph: store directory %q is not supported: only %s is", *w.StoreDir, strings.TrimSuffix(storepath.Dir, "/"))
	}
	info := bytes.TrimSpace(w.Info)
	if len(info) == 0 || info[0] != '{' {
		return nil, fmt.Errorf("closure graph: path-info JSON version %d has no \"info\" object", *w.Version)
	}
	return info, nil
}
