//go:build integration

package publish

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// TestLayoutCheck: what would make writing fail is found before any work,
// each in one line: a directory nobody can write in (even root), an
// existing layout whose files are not valid.
func TestLayoutCheck(t *testing.T) {
	ctx := context.Background()
	readOnly := testenv.ReadOnlyDir(t)
	layoutWith := func(file, content string) string {
		dir := t.TempDir()
		_, err := Write(ctx, Output{Kind: OCILayout, Path: dir}, testIndex(t, "check", amd64), WriteOptions{})
		assert.NilError(t, err)
		assert.NilError(t, os.WriteFile(filepath.Join(dir, file), []byte(content), 0o644))
		return dir
	}
	valid := t.TempDir()
	_, err := Write(ctx, Output{Kind: OCILayout, Path: valid}, testIndex(t, "check", amd64), WriteOptions{})
	assert.NilError(t, err)
	for _, tc := range []struct {
		name string
		out  Output
		want string // "" for no error
	}{
		{"oci: new", Output{OCILayout, filepath.Join(t.TempDir(), "a")}, ""},
		{"oci: existing layout", Output{OCILayout, valid}, ""},
		{"docker: new", Output{DockerArchive, filepath.Join(t.TempDir(), "x.tar")}, ""},
		{"oci: in a read-only directory", Output{OCILayout, filepath.Join(readOnly, "image")}, "cannot write in " + readOnly + " (operation not permitted)"},
		{"oci: deeper in a read-only directory", Output{OCILayout, filepath.Join(readOnly, "a", "image")}, "the directory " + filepath.Join(readOnly, "a") + " does not exist: create it first"},
		{"oci: the read-only directory itself", Output{OCILayout, readOnly}, "cannot write in " + readOnly},
		{"docker: in a read-only directory", Output{DockerArchive, filepath.Join(readOnly, "x.tar")}, "cannot write in " + readOnly},
		{"oci: garbage index.json", Output{OCILayout, layoutWith("index.json", "garbage")}, "is not a valid OCI layout (index.json: "},
		{"oci: index.json not an index", Output{OCILayout, layoutWith("index.json", "{}")}, "index.json is not an image index"},
		{"oci: garbage oci-layout", Output{OCILayout, layoutWith("oci-layout", "[1]")}, "oci-layout is not"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := NewLayout(tc.out, WriteOptions{}).Check(ctx)
			if tc.want == "" {
				assert.NilError(t, err)
				return
			}
			assert.ErrorContains(t, err, tc.out.String()+": ")
			assert.ErrorContains(t, err, tc.want)
			assert.Assert(t, !strings.Contains(err.Error(), "\n"), err)
		})
	}
	// The probe leaves nothing behind.
	entries, err := os.ReadDir(valid)
	assert.NilError(t, err)
	for _, e := range entries {
		assert.Assert(t, !strings.HasPrefix(e.Name(), ".nixery-check"), e.Name())
	}
}
