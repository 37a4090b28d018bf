//go:build integration

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// charDevice makes a character device node (major, minor) in dir.
func charDevice(t *testing.T, dir string, major, minor uint32) string {
	t.Helper()
	requireRoot(t)
	p := filepath.Join(dir, fmt.Sprintf("dev-%d-%d", major, minor))
	assert.NilError(t, syscall.Mknod(p, syscall.S_IFCHR|0o666, int(minor&0xff|major<<8)))
	return p
}

func isCharDevice(t *testing.T, p string) bool {
	t.Helper()
	info, err := os.Lstat(p)
	assert.NilError(t, err)
	return info.Mode()&os.ModeCharDevice != 0
}

// A device given as an output is written through and stays a device (a
// full one fails the run, saying so); a symlink is written through to its
// target and stays a symlink. For docker archives and for nixery pack.
func TestOutputsIntoDevicesAndSymlinks(t *testing.T) {
	testenv.Require(t, "nix", "tar")
	dir := t.TempDir()
	null, full := charDevice(t, dir, 1, 3), charDevice(t, dir, 1, 7)
	hello := strings.TrimSpace(testenv.Run(t, "nix", "--extra-experimental-features", "nix-command flakes", "eval", "--raw", standIn()+"#legacyPackages.x86_64-linux.hello.outPath"))
	testenv.Run(t, "nix", "--extra-experimental-features", "nix-command flakes", "build", "--no-link", standIn()+"#legacyPackages.x86_64-linux.hello")

	outputs := map[string]func(dest string) result{
		"docker": func(dest string) result {
			return run(t, nil, "build", "--nixpkgs", standIn(), "--output", "docker:"+dest, "hello")
		},
		"pack": func(dest string) result { return run(t, nil, "pack", "--output", dest, hello) },
	}
	for name, write := range outputs {
		t.Run(name, func(t *testing.T) {
			r := write(null)
			assert.Equal(t, r.code, 0, r.stderr)
			assert.Check(t, isCharDevice(t, null), "/dev/null's twin was replaced")

			r = write(full)
			assert.Check(t, r.code != 0, "writing to a full device succeeded")
			assert.Check(t, is.Contains(errorLine(r.stderr), "no space left on device"), r.stderr)
			assert.Check(t, isCharDevice(t, full), "/dev/full's twin was replaced")

			target := filepath.Join(t.TempDir(), "target")
			assert.NilError(t, os.WriteFile(target, []byte("old"), 0o600))
			link := filepath.Join(t.TempDir(), "link")
			assert.NilError(t, os.Symlink(target, link))
			r = write(link)
			assert.Equal(t, r.code, 0, r.stderr)
			info, err := os.Lstat(link)
			assert.NilError(t, err)
			assert.Check(t, info.Mode()&os.ModeSymlink != 0, "the symlink was replaced")
			if name == "docker" {
				assert.Check(t, is.Contains(testenv.Run(t, "tar", "-tf", target), "manifest.json"))
			} else {
				assert.Check(t, is.Contains(testenv.Run(t, "tar", "-tzf", target), strings.TrimPrefix(hello, "/")))
			}
		})
	}
	entries, err := os.ReadDir(dir)
	assert.NilError(t, err)
	assert.Equal(t, len(entries), 2, "files were left beside the devices: %v", entries)
}

// A layout on a disk that fills up: the builds that cannot be written
// fail, and every earlier tag still reads back with skopeo. One build
// needs only index.json written (its blobs are there), another new blobs.
func TestLayoutDiskFull(t *testing.T) {
	testenv.Require(t, "nix", "skopeo", "unshare")
	requireRoot(t)
	dir := t.TempDir()
	script := `
mount -t tmpfs -o size=16m tmpfs "$DISK"
cleanup() { umount "$DISK"; }
trap cleanup EXIT
nixery build --nixpkgs "$NIXPKGS" --output "oci:$DISK/layout" --tags t1 hello 2>/dev/null
cp -a "$DISK/layout" "$DISK/../before"
head -c 100m /dev/zero > "$DISK/fill" 2>/dev/null || true
echo "== same blobs, new tag"
if nixery build --nixpkgs "$NIXPKGS" --output "oci:$DISK/layout" --tags t2 hello 2>&1; then echo UNEXPECTED-SUCCESS; fi
echo "== new blobs"
if nixery build --nixpkgs "$NIXPKGS" --output "oci:$DISK/layout" --tags t3 largefile 2>&1; then echo UNEXPECTED-SUCCESS; fi
echo "== TMPDIR full"
mkdir "$DISK/tmp"
if TMPDIR="$DISK/tmp" nixery build --nixpkgs "$NIXPKGS" --output "oci:$DISK/../other" --tags t4 largefile 2>&1; then echo UNEXPECTED-SUCCESS; fi
echo "== read back"
skopeo inspect --raw "oci:$DISK/layout:t1" >/dev/null && echo T1-READS
if diff -r "$DISK/../before" "$DISK/layout"; then echo UNCHANGED; fi
ls -a "$DISK/layout"
`
	assert.NilError(t, os.Mkdir(filepath.Join(dir, "disk"), 0o755))
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-ec", script)
	cmd.Env = append(os.Environ(), "NIX_CONFIG="+testenv.NixConfig, "DISK="+filepath.Join(dir, "disk"), "NIXPKGS="+standIn(),
		"PATH="+filepath.Dir(nixery)+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	text := string(out)
	assert.NilError(t, err, text)
	assert.Check(t, !strings.Contains(text, "UNEXPECTED-SUCCESS"), text)
	// The disk named, and what to do: the layout's, and TMPDIR's.
	layoutFull := "no space left on the disk holding " + filepath.Join(dir, "disk", "layout") + ": free space or write the image elsewhere"
	assert.Check(t, strings.Count(text, layoutFull) >= 2, text)
	assert.Check(t, is.Contains(text, "no space left on the disk holding "+filepath.Join(dir, "disk", "tmp")+": free space or point TMPDIR elsewhere"), text)
	assert.Check(t, !strings.Contains(text, "read /nix/store/"), "a full disk told as a read: %s", text)
	assert.Check(t, is.Contains(text, "T1-READS"), text)
	assert.Check(t, is.Contains(text, "UNCHANGED"), text)
	assert.Check(t, !regexp.MustCompile(`(?m)^\.index\.json\.`).MatchString(text), "a temporary index was left: %s", text)
}

// Ten builds writing one layout at once all land: every tag reads back.
func TestLayoutConcurrentBuilds(t *testing.T) {
	testenv.Require(t, "nix", "skopeo")
	dir := filepath.Join(t.TempDir(), "layout")
	const n = 10
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			results[i] = run(t, nil, "build", "--nixpkgs", standIn(), "--output", "oci:"+dir,
				"--tags", fmt.Sprintf("t%d", i), "--labels", fmt.Sprintf("build=%d", i), "hello")
		})
	}
	wg.Wait()
	for i, r := range results {
		assert.Check(t, r.code == 0, "build %d: %s", i, r.stderr)
	}
	for i := range n {
		_, err := runOutput("skopeo", "inspect", "--raw", fmt.Sprintf("oci:%s:t%d", dir, i))
		assert.Check(t, err, "tag t%d", i)
	}
}
