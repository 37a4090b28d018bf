//go:build integration

package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// addToStore puts a file or directory into the Nix store and returns its
// store path.
func addToStore(t *testing.T, src string) string {
	t.Helper()
	out, err := exec.Command("nix-store", "--add", src).Output()
	if ee, ok := err.(*exec.ExitError); ok {
		t.Fatalf("nix-store --add %s: %v\n%s", src, err, ee.Stderr)
	}
	assert.NilError(t, err)
	return strings.TrimSpace(string(out))
}

// TestPackCommandStorePaths packs real store paths (a package-like tree
// and a single file) given in any order, repeated or not, at any
// concurrency: the same bytes and the same printed line every time, and
// the tar holds exactly what is on disk.
func TestPackCommandStorePaths(t *testing.T) {
	testenv.Require(t, "nix-store")
	src := t.TempDir()
	pkg := filepath.Join(src, "nixery-pack-test-pkg")
	assert.NilError(t, os.MkdirAll(filepath.Join(pkg, "bin"), 0o755))
	assert.NilError(t, os.MkdirAll(filepath.Join(pkg, "share", "doc", "naïve"), 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(pkg, "bin", "hello"), []byte("#!/bin/sh\necho hello\n"), 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(pkg, "share", "doc", "naïve", strings.Repeat("README-", 20)), []byte("docs\n"), 0o644))
	assert.NilError(t, os.Symlink("hello", filepath.Join(pkg, "bin", "hi")))
	assert.NilError(t, os.Symlink("/etc/hostname", filepath.Join(pkg, "outside")))
	script := filepath.Join(src, "nixery-pack-test-script.sh")
	assert.NilError(t, os.WriteFile(script, []byte("#!/bin/sh\n"), 0o644))
	paths := []string{addToStore(t, pkg), addToStore(t, script)}

	out := t.TempDir()
	pack := func(name string, args ...string) (string, []byte) {
		t.Helper()
		file := filepath.Join(out, name)
		code, stdout, stderr := runCLI(t, append([]string{"pack", "--output", file}, args...)...)
		assert.Equal(t, code, 0, stderr)
		assert.Equal(t, stderr, "")
		blob, err := os.ReadFile(file)
		assert.NilError(t, err)
		info, err := os.Stat(file)
		assert.NilError(t, err)
		assert.Equal(t, info.Mode().Perm(), os.FileMode(0o644))
		return stdout, blob
	}
	stdout, blob := pack("a", paths[0], paths[1])

	// The printed line is the blob's description, and nothing else.
	var fields map[string]any
	assert.NilError(t, json.Unmarshal([]byte(stdout), &fields))
	assert.Equal(t, len(fields), 4, stdout)
	assert.Equal(t, fields["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip")
	assert.Equal(t, fields["digest"], sha256Hex(blob))
	assert.Equal(t, fields["size"], float64(len(blob)))
	assert.Assert(t, is.Regexp(`^sha256:[0-9a-f]{64}$`, fields["diffID"].(string)))
	assert.Assert(t, strings.HasSuffix(stdout, "}\n") && strings.Count(stdout, "\n") == 1, stdout)

	assert.DeepEqual(t, tarEntries(t, blob), diskEntries(t, paths))

	for _, args := range [][]string{
		{paths[1], paths[0]},
		{paths[1], paths[0], paths[1]},
		{"--concurrency", "1", paths[0], paths[1]},
		{"--concurrency", "7", paths[1], paths[0]},
	} {
		again, againBlob := pack("b", args...)
		assert.Equal(t, again, stdout, args)
		assert.Assert(t, bytes.Equal(againBlob, blob), args)
	}

	// Another level, other bytes of the same tar.
	fast, fastBlob := pack("c", "--level", "1", paths[0], paths[1])
	assert.Assert(t, fast != stdout)
	assert.DeepEqual(t, tarEntries(t, fastBlob), tarEntries(t, blob))
	var fastFields map[string]any
	assert.NilError(t, json.Unmarshal([]byte(fast), &fastFields))
	assert.Equal(t, fastFields["diffID"], fields["diffID"])

	// zstd: the same tar, the same bytes at any concurrency, another
	// media type; the level as --compression zstd:N or --level N.
	zs, zsBlob := pack("d", "--compression", "zstd", paths[0], paths[1])
	var zsFields map[string]any
	assert.NilError(t, json.Unmarshal([]byte(zs), &zsFields))
	assert.Equal(t, zsFields["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd")
	assert.Equal(t, zsFields["diffID"], fields["diffID"])
	assert.Equal(t, zsFields["digest"], sha256Hex(zsBlob))
	zr, err := zstd.NewReader(bytes.NewReader(zsBlob))
	assert.NilError(t, err)
	tarBytes, err := io.ReadAll(zr)
	assert.NilError(t, err)
	zr.Close()
	assert.Equal(t, sha256Hex(tarBytes), fields["diffID"])
	for _, args := range [][]string{
		{"--compression", "zstd:3", "--concurrency", "1", paths[1], paths[0]},
		{"--compression", "zstd", "--level", "4", "--concurrency", "7", paths[0], paths[1]},
	} {
		again, againBlob := pack("e", args...)
		assert.Equal(t, again, zs, args)
		assert.Assert(t, bytes.Equal(againBlob, zsBlob), args)
	}
	best, _ := pack("f", "--compression", "zstd:19", paths[0], paths[1])
	assert.Assert(t, best != zs)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// TestPackCommand packs a real store path and checks the printed hashes
// against the blob.
func TestPackCommand(t *testing.T) {
	testenv.Require(t, "nix-store")
	src := filepath.Join(t.TempDir(), "packtest")
	assert.NilError(t, os.MkdirAll(filepath.Join(src, "bin"), 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(src, "bin", "tool"), []byte("#!/bin/sh\necho hi\n"), 0o755))
	added, err := exec.Command("nix-store", "--add", src).Output()
	assert.NilError(t, err)
	storePath := strings.TrimSpace(string(added))

	blobFile := filepath.Join(t.TempDir(), "blob")
	code, out, errOut := runCLI(t, "pack", "--output", blobFile, storePath)
	assert.Equal(t, code, 0, errOut)
	var blob struct {
		Digest, DiffID string
		Size           int64
	}
	assert.NilError(t, json.Unmarshal([]byte(out), &blob))
	data, err := os.ReadFile(blobFile)
	assert.NilError(t, err)
	sum := sha256.Sum256(data)
	assert.Equal(t, blob.Digest, "sha256:"+hex.EncodeToString(sum[:]))
	assert.Equal(t, blob.Size, int64(len(data)))
	zr, err := gzip.NewReader(bytes.NewReader(data))
	assert.NilError(t, err)
	tarBytes, err := io.ReadAll(zr)
	assert.NilError(t, err)
	sum = sha256.Sum256(tarBytes)
	assert.Equal(t, blob.DiffID, "sha256:"+hex.EncodeToString(sum[:]))
	assert.Assert(t, is.Contains(string(tarBytes), strings.TrimPrefix(storePath, "/")+"/bin/tool"))
}

// tarEntries reads a blob back: each entry's name, type, mode and link.
func tarEntries(t *testing.T, blob []byte) []string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(blob))
	assert.NilError(t, err)
	tr := tar.NewReader(zr)
	var out []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		assert.NilError(t, err)
		out = append(out, entryLine(h.Name, h.Typeflag, h.Mode, h.Linkname))
	}
}

// diskEntries is what the tar of store paths must hold, read from the
// store itself: the same names, in lexical order of each path's tree, with
// Nix's modes.
func diskEntries(t *testing.T, storePaths []string) []string {
	t.Helper()
	out := []string{entryLine("nix/", tar.TypeDir, 0o555, ""), entryLine("nix/store/", tar.TypeDir, 0o555, "")}
	sorted := append([]string(nil), storePaths...)
	sort.Strings(sorted)
	for _, sp := range sorted {
		err := filepath.WalkDir(sp, func(path string, d fs.DirEntry, err error) error {
			assert.NilError(t, err)
			name := strings.TrimPrefix(path, "/")
			info, err := d.Info()
			assert.NilError(t, err)
			switch {
			case d.IsDir():
				out = append(out, entryLine(name+"/", tar.TypeDir, 0o555, ""))
			case d.Type()&fs.ModeSymlink != 0:
				link, err := os.Readlink(path)
				assert.NilError(t, err)
				out = append(out, entryLine(name, tar.TypeSymlink, 0o777, link))
			case info.Mode()&0o111 != 0:
				out = append(out, entryLine(name, tar.TypeReg, 0o555, ""))
			default:
				out = append(out, entryLine(name, tar.TypeReg, 0o444, ""))
			}
			return nil
		})
		assert.NilError(t, err)
	}
	return out
}

func entryLine(name string, typ byte, mode int64, link string) string {
	s := fmt.Sprintf("%s %c %04o", name, typ, mode)
	if link != "" {
		s += " -> " + link
	}
	return s
}
