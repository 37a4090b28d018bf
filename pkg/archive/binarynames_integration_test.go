//go:build integration

package archive

import (
	"archive/tar"
	"bytes"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// TestBinaryNamesWithTools: a layer with names that are not UTF-8 is read
// without error, and its names come back byte for byte, by readers we did
// not write: Go's, GNU tar's, bsdtar's (which fails on such names without
// hdrcharset=BINARY) and umoci's.
func TestBinaryNamesWithTools(t *testing.T) {
	testenv.Require(t, "tar", "bsdtar", "umoci")
	tarBytes, _, err := packDir(t, binaryTree(t), Options{Uncompressed: true})
	assert.NilError(t, err)
	file := filepath.Join(t.TempDir(), "layer.tar")
	assert.NilError(t, os.WriteFile(file, tarBytes, 0o644))
	names, want := goTree(t, tarBytes)
	binary := 0
	for _, n := range names {
		if !utf8.ValidString(n) || !utf8.ValidString(want[n]) {
			binary++
		}
	}
	assert.Equal(t, binary, 4, "the fixture's names that are not UTF-8")

	for _, prog := range []string{"tar", "bsdtar"} {
		_, stderr := runTool(t, prog, "-tvf", file)
		if prog == "bsdtar" {
			// It warns (and exits 1) on a name it cannot convert.
			assert.Equal(t, stderr, "", prog)
		}
		if prog == "tar" {
			listed, _ := runTool(t, prog, "--quoting-style=literal", "-tf", file)
			assert.DeepEqual(t, strings.Split(strings.TrimSuffix(listed, "\n"), "\n"), names)
		}
		dest := t.TempDir()
		runTool(t, prog, "-xf", file, "-C", dest)
		assert.DeepEqual(t, diskTree(t, dest), want)
	}

	// umoci unpacks it, gzipped, from an OCI layout.
	layer, err := tarball.LayerFromFile(file, tarball.WithMediaType(types.OCILayer))
	assert.NilError(t, err)
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	base, err = mutate.ConfigFile(base, &v1.ConfigFile{OS: "linux", Architecture: "amd64", RootFS: v1.RootFS{Type: "layers"}})
	assert.NilError(t, err)
	img, err := mutate.AppendLayers(base, layer)
	assert.NilError(t, err)
	dir := filepath.Join(t.TempDir(), "oci")
	p, err := layout.Write(dir, empty.Index)
	assert.NilError(t, err)
	assert.NilError(t, p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1"})))
	bundle := filepath.Join(t.TempDir(), "bundle")
	runTool(t, "umoci", "unpack", "--rootless", "--image", dir+":v1", bundle)
	assert.DeepEqual(t, diskTree(t, filepath.Join(bundle, "rootfs")), want)
}

// runTool runs prog in a UTF-8 locale (in the C locale bsdtar fails on
// any non-ASCII name, UTF-8 or not), failing the test unless it exits 0.
func runTool(t *testing.T, prog string, args ...string) (stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(prog, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", prog, strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), errOut.String()
}

// goTree lists the tar's entries, as Go's reader gives them, in order,
// and maps each to its link target ("" for directories, whose names end
// in /, and files).
func goTree(t *testing.T, tarBytes []byte) ([]string, map[string]string) {
	var names []string
	tree := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(tarBytes))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names, tree
		}
		assert.NilError(t, err)
		names = append(names, h.Name)
		tree[h.Name] = h.Linkname
	}
}

// diskTree is goTree of an unpacked directory. It makes the directories
// writable again (the layer's are 0555), so they can be removed.
func diskTree(t *testing.T, root string) map[string]string {
	tree := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == root {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			tree[rel+"/"] = ""
			return os.Chmod(path, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			tree[rel], err = os.Readlink(path)
			return err
		}
		tree[rel] = ""
		return nil
	})
	assert.NilError(t, err)
	return tree
}
