//go:build integration && !linux

package e2e

import "testing"

// mountTmpfs needs Linux's mount(2); the e2e tests run on Linux.
func mountTmpfs(t *testing.T, size string) string {
	t.Fatal("mounting a tmpfs needs Linux")
	return ""
}

// remountReadOnly needs Linux's mount(2).
func remountReadOnly(t *testing.T, dir string) {
	t.Fatal("remounting a tmpfs needs Linux")
}
