//go:build integration

package flaketest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// copyTracked copies the files git tracks (as they are in the working
// tree: what a flake in this repository sees) from root into dst.
func copyTracked(t testing.TB, root, dst string) {
	t.Helper()
	out := run(t, root, nil, "git", "ls-files", "-z")
	for _, name := range strings.Split(strings.TrimRight(out, "\x00"), "\x00") {
		if name == "" {
			continue
		}
		if err := copyPath(filepath.Join(root, name), filepath.Join(dst, name)); err != nil {
			if os.IsNotExist(err) {
				continue // deleted in the working tree, not yet in git
			}
			t.Fatalf("copying %s: %v", name, err)
		}
	}
}

// copyDir copies a directory tree.
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		return copyPath(path, filepath.Join(dst, rel))
	})
	if err != nil {
		t.Fatalf("copying %s: %v", src, err)
	}
}

// copyPath copies one file or symlink, keeping the executable bit.
func copyPath(src, dst string) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		return os.Symlink(target, dst)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, fi.Mode().Perm())
}
