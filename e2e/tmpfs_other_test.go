//go:build integration && !linux

package e2e

import "testing"

// mountTmpfs needs Linux's mount(2); the e2e tests run on Linux.
func mountTmpfs(t *testing.T, size string) string {
	t.Fatal("mounting a tmpfs needs Linux")
	return ""
}
