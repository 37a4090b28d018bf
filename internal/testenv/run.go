package testenv

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// Run runs a program (skopeo, umoci, oras, ...) and returns its standard
// output; the test fails with the program's standard error when it fails.
func Run(t testing.TB, prog string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(prog, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", prog, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}
