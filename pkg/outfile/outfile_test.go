package outfile

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"gotest.tools/v3/assert"
)

func write(t *testing.T, path, data string) error {
	t.Helper()
	f, err := Create(path)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(data); err != nil {
		f.Abort()
		return err
	}
	return f.Commit()
}

// A new file appears complete, with Mode; an existing regular file is
// replaced whole and keeps its mode; a write given up leaves it as it was
// and no temporary file behind.
func TestRegularFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.tar")
	assert.NilError(t, write(t, p, "one"))
	info, err := os.Stat(p)
	assert.NilError(t, err)
	assert.Equal(t, info.Mode().Perm(), Mode)

	assert.NilError(t, os.Chmod(p, 0o600))
	assert.NilError(t, write(t, p, "two"))
	info, err = os.Stat(p)
	assert.NilError(t, err)
	assert.Equal(t, info.Mode().Perm(), os.FileMode(0o600), "the file's own mode is kept")

	f, err := Create(p)
	assert.NilError(t, err)
	f.WriteString("half")
	f.Abort()
	got, err := os.ReadFile(p)
	assert.NilError(t, err)
	assert.Equal(t, string(got), "two")
	entries, err := os.ReadDir(dir)
	assert.NilError(t, err)
	assert.Equal(t, len(entries), 1, "a temporary file was left: %v", entries)
}

// A symlink is written through to its target, and stays a symlink; one
// leading nowhere gets its target made, as the shell's > does.
func TestSymlink(t *testing.T) {
	dir := t.TempDir()
	target, link := filepath.Join(dir, "target"), filepath.Join(dir, "link")
	assert.NilError(t, os.WriteFile(target, []byte("old contents, longer"), 0o600))
	assert.NilError(t, os.Symlink(target, link))
	assert.NilError(t, write(t, link, "new"))
	info, err := os.Lstat(link)
	assert.NilError(t, err)
	assert.Assert(t, info.Mode()&os.ModeSymlink != 0, "the symlink was replaced")
	got, err := os.ReadFile(target)
	assert.NilError(t, err)
	assert.Equal(t, string(got), "new")

	dangling := filepath.Join(dir, "dangling")
	assert.NilError(t, os.Symlink(filepath.Join(dir, "made"), dangling))
	assert.NilError(t, write(t, dangling, "x"))
	got, err = os.ReadFile(filepath.Join(dir, "made"))
	assert.NilError(t, err)
	assert.Equal(t, string(got), "x")
}

// A FIFO is a stream to its reader.
func TestFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	assert.NilError(t, syscall.Mkfifo(fifo, 0o600))
	read := make(chan string)
	go func() {
		f, err := os.Open(fifo)
		if err != nil {
			read <- err.Error()
			return
		}
		b, _ := io.ReadAll(f)
		f.Close()
		read <- string(b)
	}()
	assert.NilError(t, write(t, fifo, "streamed"))
	assert.Equal(t, <-read, "streamed")
}

func TestRefused(t *testing.T) {
	dir := t.TempDir()
	_, err := Create(dir)
	assert.ErrorContains(t, err, "is a directory: name a file")
	link := filepath.Join(dir, "to-dir")
	assert.NilError(t, os.Symlink(dir, link))
	_, err = Create(link)
	assert.ErrorContains(t, err, "leads to a directory")
}

// CheckDir passes a directory a file can be made in, leaving nothing
// there, and gives the system's reason for one it cannot (/proc takes
// no new files, even from root).
func TestCheckDir(t *testing.T) {
	dir := t.TempDir()
	assert.NilError(t, CheckDir(dir))
	entries, err := os.ReadDir(dir)
	assert.NilError(t, err)
	assert.Equal(t, len(entries), 0)
	err = CheckDir("/proc")
	assert.Assert(t, err != nil)
	assert.Check(t, !strings.Contains(err.Error(), ".nixery-check-"), err.Error())
}
