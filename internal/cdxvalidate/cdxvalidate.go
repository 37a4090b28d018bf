// Package cdxvalidate checks CycloneDX JSON with the CycloneDX project's
// own validator (the JavaScript library @cyclonedx/cyclonedx-library, its
// schemas bundled, no network), so that tests hold SBOMs to the schema
// with tooling written by others. The Node project lives in
// tools/cdxvalidate; scripts/setup.sh installs it into that directory's
// node_modules; without it, the test fails.
package cdxvalidate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// Check returns the validator's verdict on each CycloneDX JSON document,
// in order: nil when it is valid, else an error listing what is wrong.
// All are checked by one run of the validator (Node.js takes seconds to
// compile the schema). The test fails when the validator cannot run.
func Check(t testing.TB, docs ...[]byte) []error {
	t.Helper()
	testenv.Require(t, "node")
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cdxvalidate: cannot find its own directory")
	}
	dir := filepath.Join(filepath.Dir(self), "..", "..", "tools", "cdxvalidate")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@cyclonedx", "cyclonedx-library")); err != nil {
		t.Fatalf("the CycloneDX validator is not installed in %s: run scripts/setup.sh first", dir)
	}
	tmp := t.TempDir()
	args := []string{filepath.Join(dir, "validate.mjs"), "--json"}
	for i, doc := range docs {
		file := filepath.Join(tmp, fmt.Sprintf("bom-%d.json", i))
		if err := os.WriteFile(file, doc, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, file)
	}
	cmd := exec.Command("node", args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
		t.Fatalf("running the CycloneDX validator: %v\n%s", err, stderr.String())
	}
	var results []struct {
		Valid  bool
		Errors []string
	}
	if err := json.Unmarshal(out, &results); err != nil || len(results) != len(docs) {
		t.Fatalf("the CycloneDX validator said %q (%v)\n%s", out, err, stderr.String())
	}
	verdicts := make([]error, len(docs))
	for i, r := range results {
		if !r.Valid {
			verdicts[i] = fmt.Errorf("invalid CycloneDX:\n  %s", strings.Join(r.Errors, "\n  "))
		}
	}
	return verdicts
}

// Validate fails the test unless every document is valid CycloneDX JSON.
func Validate(t testing.TB, docs ...[]byte) {
	t.Helper()
	for i, err := range Check(t, docs...) {
		if err != nil {
			t.Errorf("document %d: %v", i, err)
		}
	}
}
