package main

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/pkg/archive"
)

func TestCompressionOptions(t *testing.T) {
	for _, tc := range []struct {
		flag  string
		level int
		want  archive.Compression
		lvl   int
	}{
		{"gzip", 0, archive.Gzip, 0},
		{"gzip", 6, archive.Gzip, 6},
		{"gzip:6", 0, archive.Gzip, 6},
		{"gzip:6", 6, archive.Gzip, 6},
		{"zstd", 0, archive.Zstd, 0},
		{"zstd:3", 0, archive.Zstd, 3},
		{"zstd", 19, archive.Zstd, 19},
	} {
		c, l, err := compressionOptions(tc.flag, tc.level)
		assert.NilError(t, err, "%s %d", tc.flag, tc.level)
		assert.Equal(t, c, tc.want, "%s %d", tc.flag, tc.level)
		assert.Equal(t, l, tc.lvl, "%s %d", tc.flag, tc.level)
	}
	for _, tc := range []struct {
		flag  string
		level int
		want  string
	}{
		{"xz", 0, `--compression: unknown compression "xz": use gzip or zstd, with an optional :LEVEL (e.g. zstd:3)`},
		{"zstd:23", 0, `--compression: compression "zstd:23": the zstd level is 1 to 22`},
		{"gzip", 10, "--level 10 is out of range: use 1 to 9"},
		{"zstd", 23, "--level 23 is out of range: use 1 to 22"},
		{"zstd:3", 5, "--level 5 and --compression zstd:3 give two levels: give one"},
	} {
		_, _, err := compressionOptions(tc.flag, tc.level)
		assert.Error(t, err, tc.want)
		var u usageError
		assert.Assert(t, errors.As(err, &u), "%T", err)
	}
}

// The CLI refuses a bad --compression before doing anything, and says in
// --help that gzip is the default because old Docker cannot pull zstd.
func TestCompressionFlag(t *testing.T) {
	out := filepath.Join(t.TempDir(), "blob")
	for _, args := range [][]string{
		{"pack", "--output", out, "--compression", "brotli", "/nix/store/0c5ma6vzrfd1asz7jg4z0pb8dh8f6z2b-x"},
		{"build", "--nixpkgs", "path:/nonexistent", "--output", "oci:" + out, "--compression", "brotli", "hello"},
	} {
		code, _, errOut := runCLI(t, args...)
		assert.Equal(t, code, 2, args)
		assert.Check(t, is.Contains(errOut, `--compression: unknown compression "brotli": use gzip or zstd`), args)
	}
	for _, cmd := range []string{"build", "pack"} {
		code, stdout, _ := runCLI(t, cmd, "--help")
		assert.Equal(t, code, 0)
		help := strings.Join(strings.Fields(stdout), " ")
		assert.Check(t, is.Contains(help, "--compression ALGO[:LEVEL] layer compression ALGO[:LEVEL]: gzip"), cmd)
		assert.Check(t, is.Contains(help, "Docker before 23.0"), cmd)
		assert.Check(t, is.Contains(help, "(default gzip)"), cmd)
	}
}
