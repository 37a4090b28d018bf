package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/pkg/storepath"
)

// `nixery layers --closure` reads what `nix path-info --json
// --json-format 2` prints on Nix 2.33 and later (the shape of NixOS/nix
// 2.35.2 src/nix/path-info.cc: {"info": {BASENAME: ...}, "storeDir",
// "version"}, base names as keys and references), and plans the same
// layers as from the list Nix 2.8 printed for the same closure.
func TestLayersVersionedClosure(t *testing.T) {
	listFile := layersTestdata("shell-hello-busybox.json")
	data, err := os.ReadFile(listFile)
	assert.NilError(t, err)
	var list []map[string]any
	assert.NilError(t, json.Unmarshal(data, &list))
	info := map[string]any{}
	for _, entry := range list {
		path := entry["path"].(string)
		delete(entry, "path")
		var refs []string
		for _, r := range entry["references"].([]any) {
			refs = append(refs, strings.TrimPrefix(r.(string), storepath.Dir))
		}
		entry["references"] = refs
		entry["storeDir"] = "/nix/store"
		info[strings.TrimPrefix(path, storepath.Dir)] = entry
	}
	versioned, err := json.Marshal(map[string]any{"info": info, "storeDir": "/nix/store", "version": 2})
	assert.NilError(t, err)
	versionedFile := filepath.Join(t.TempDir(), "closure-v2.json")
	assert.NilError(t, os.WriteFile(versionedFile, versioned, 0o644))

	code, fromList, errOut := runCLI(t, "layers", "--closure", listFile, "--budget", "4")
	assert.Equal(t, code, 0, errOut)
	code, fromVersioned, errOut := runCLI(t, "layers", "--closure", versionedFile, "--budget", "4")
	assert.Equal(t, code, 0, errOut)
	assert.Equal(t, fromVersioned, fromList)
	assert.Assert(t, strings.Count(fromList, `"key"`) == 4, fromList)
}
