// Package outfile writes the files nixery is asked to write (a docker
// archive, a packed layer) the way careful tools write them. A regular
// file, or a path with nothing there, gets a temporary file in the same
// directory, synced and renamed into place once complete, so a failed
// write leaves what was there. A device, a FIFO, or a symlink is written
// through as a stream, as the shell's > would: it is never replaced by a
// regular file (a build run as root must not turn /dev/full into a file).
package outfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Mode is the mode of a file this package creates: outputs are for other
// tools to read. An existing regular file keeps its own mode.
const Mode fs.FileMode = 0o644

// File is an output being written. Write to it, then Commit; Abort (or a
// Commit that failed) removes whatever was written to a temporary file.
type File struct {
	*os.File
	dest   string
	tmp    string // "" when writing through to dest
	mode   fs.FileMode
	closed bool
}

// Create starts writing the output path.
func Create(path string) (*File, error) {
	info, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return createTemp(path, Mode)
	case err != nil:
		return nil, err
	case info.Mode().IsRegular():
		return createTemp(path, info.Mode().Perm())
	case info.IsDir():
		return nil, fmt.Errorf("%s is a directory: name a file", path)
	case info.Mode()&(fs.ModeSymlink|fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe) != 0:
		return writeThrough(path)
	}
	return nil, fmt.Errorf("%s is a %s, not a file nixery can write", path, kind(info.Mode()))
}

// writeThrough opens path, or what its symlinks lead to, for a stream.
func writeThrough(path string) (*File, error) {
	target, err := os.Stat(path)
	if err == nil && target.IsDir() {
		return nil, fmt.Errorf("%s leads to a directory: name a file", path)
	}
	flags := os.O_WRONLY
	if err == nil && target.Mode().IsRegular() {
		flags |= os.O_TRUNC
	} else if errors.Is(err, fs.ErrNotExist) {
		flags |= os.O_CREATE // a dangling symlink, made real as > would
	}
	f, err := os.OpenFile(path, flags, Mode)
	if err != nil {
		return nil, err
	}
	return &File{File: f, dest: path}, nil
}

func createTemp(path string, mode fs.FileMode) (*File, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return nil, err
	}
	return &File{File: f, dest: path, tmp: f.Name(), mode: mode}, nil
}

// Commit finishes the output: a temporary file is synced, given its mode
// and renamed over the destination.
func (f *File) Commit() error {
	if f.tmp == "" {
		f.closed = true
		return f.File.Close()
	}
	err := f.File.Sync()
	if cerr := f.File.Close(); err == nil {
		err = cerr
	}
	f.closed = true
	if err == nil {
		err = os.Chmod(f.tmp, f.mode)
	}
	if err == nil {
		err = os.Rename(f.tmp, f.dest)
	}
	if err != nil {
		os.Remove(f.tmp)
		return err
	}
	return Sync(filepath.Dir(f.dest))
}

// Abort gives the output up: a temporary file is removed. A stream keeps
// what was written to it. It does nothing after Commit.
func (f *File) Abort() {
	if f.closed {
		return
	}
	f.closed = true
	f.File.Close()
	if f.tmp != "" {
		os.Remove(f.tmp)
	}
}

// Streamed tells whether the output is written through (a device, FIFO
// or symlink) rather than renamed into place.
func (f *File) Streamed() bool { return f.tmp == "" }

// Sync makes the file or directory at path durable: a file's bytes, a
// directory's entries (a rename or link in it).
func Sync(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("sync %s: %w", path, err) // (EINVAL: a file system that cannot sync a directory)
	}
	return nil
}

func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeIrregular != 0:
		return "irregular file"
	}
	return m.Type().String()
}

// CheckDir makes and removes a file in dir, so that a directory nothing
// can be written in shows before any work: permissions, a read-only file
// system or an immutable directory, for root too. The error is the
// system's reason alone (the probe's name means nothing to a user).
func CheckDir(dir string) error {
	f, err := os.CreateTemp(dir, ".nixery-check-")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return pe.Err
		}
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// NoSpaceError is a write that failed for want of space (ENOSPC) on the
// disk holding Dir. Its text says which disk and what to do (Advice);
// the cause stays reachable through errors.Is.
type NoSpaceError struct {
	Dir, Advice string
	Err         error
}

func (e *NoSpaceError) Error() string {
	return fmt.Sprintf("no space left on the disk holding %s: free space or %s", e.Dir, e.Advice)
}

func (e *NoSpaceError) Unwrap() error { return e.Err }

// NoSpace returns err as a NoSpaceError for dir when it is a full disk,
// and as it is otherwise (or when explained already).
func NoSpace(err error, dir, advice string) error {
	var ns *NoSpaceError
	if err == nil || !errors.Is(err, syscall.ENOSPC) || errors.As(err, &ns) {
		return err
	}
	return &NoSpaceError{Dir: dir, Advice: advice, Err: err}
}
