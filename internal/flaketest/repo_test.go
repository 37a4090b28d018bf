package flaketest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// nixConfig is the offline single-user configuration of the machine
// recipes, set by the tests themselves so they do not depend on
// /etc/nix/nix.conf.
const nixConfig = "experimental-features = nix-command flakes\nsandbox = false\nbuild-users-group =\nsubstituters =\nextra-platforms = aarch64-linux\n"

// repoRoot is the repository's top directory (tests run in their
// package's directory).
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found: %v", err)
	}
	return root
}

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

// run runs a program in dir with extra environment variables and returns
// its standard output; it fails the test, showing standard error, when the
// program fails.
func run(t testing.TB, dir string, env []string, name string, args ...string) string {
	t.Helper()
	stdout, stderr, err := runErr(dir, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, tail(stderr, 40))
	}
	return stdout
}

// runErr is run that hands back the error and standard error instead.
func runErr(dir string, env []string, name string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// tail keeps the last n lines of a log.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
