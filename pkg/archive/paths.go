package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/nixery-action/nixery-action/internal/ctxio"
	"github.com/nixery-action/nixery-action/pkg/storepath"
)

// Modes, as Nix stores them: the store is read-only, and only whether a
// file is executable survives.
const (
	dirMode     = 0o555
	execMode    = 0o555
	fileMode    = 0o444
	symlinkMode = 0o777
)

// PackPaths packs store paths as they are on disk into one layer blob
// written to w. The tar holds nix/, nix/store/ and each path's tree under
// relative names; symlinks are kept as symlinks (never followed), hard
// links become regular files, and sockets, devices, fifos and names
// starting with .wh. (whiteouts to OCI readers) are errors.
func PackPaths(w io.Writer, storePaths []string, o Options) (Blob, error) {
	p, err := newPacker(w, o)
	if err != nil {
		return Blob{}, err
	}
	defer p.abort()
	paths := append([]string(nil), storePaths...)
	sort.Strings(paths)
	if err := p.dirs("nix/", "nix/store/"); err != nil {
		return Blob{}, err
	}
	for i, sp := range paths {
		if i > 0 && sp == paths[i-1] {
			continue
		}
		if !storepath.Valid(sp) {
			return Blob{}, fmt.Errorf("%q is not a top-level store path under /nix/store", sp)
		}
		if err := p.addTree(sp, strings.TrimPrefix(sp, "/")); err != nil {
			return Blob{}, err
		}
	}
	return p.close()
}

// dirs writes directory entries.
func (p *packer) dirs(names ...string) error {
	for _, n := range names {
		if err := p.writeHeader(p.header(n, tar.TypeDir, dirMode)); err != nil {
			return err
		}
	}
	return nil
}

// addTree writes the store path at storePath, in lexical order, under
// the tar name name (its own entry) and name/... for what is below it.
//
// Every entry is opened relative to its directory's open descriptor and
// never through a symlink (O_NOFOLLOW), directories included: an entry
// swapped for a symlink while the path is packed is an error, so nothing
// outside the store path, no file of the host, is read into the layer.
func (p *packer) addTree(storePath, name string) error {
	info, err := os.Lstat(storePath)
	if err != nil {
		return fmt.Errorf("read %s: %w", storePath, err)
	}
	store, err := os.Open(filepath.Dir(storePath))
	if err != nil {
		return fmt.Errorf("read %s: %w", storePath, err)
	}
	defer store.Close()
	return p.addEntry(store, storePath, storePath, name, info.Mode().Type())
}

// addEntry writes the entry path, of type t, found in the directory dir
// of the store path storePath.
func (p *packer) addEntry(dir *os.File, storePath, path, name string, t fs.FileMode) error {
	if err := p.ctx.Err(); err != nil {
		return err
	}
	base := filepath.Base(path)
	if isWhiteout(base) {
		return whiteoutError(storePath, path)
	}
	switch {
	case t.IsDir():
		return p.addDir(dir, storePath, path, name)
	case t&fs.ModeSymlink != 0:
		target, err := readlinkAt(dir, base)
		if err != nil {
			return fmt.Errorf("read symlink %s: %w", path, err)
		}
		h := p.header(name, tar.TypeSymlink, symlinkMode)
		h.Linkname = target
		return p.writeHeader(h)
	case t.IsRegular():
		return p.addFile(dir, path, name)
	default:
		return fmt.Errorf("%s is a %s: store paths may hold only files, directories and symlinks", path, kind(t))
	}
}

// addDir writes the directory path, found in dir, and what it holds.
func (p *packer) addDir(dir *os.File, storePath, path, name string) error {
	d, err := openAt(dir, filepath.Base(path), unix.O_DIRECTORY)
	if errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("%s changed while it was packed (it is no directory now)", path)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	defer d.Close()
	if err := p.dirs(name + "/"); err != nil {
		return err
	}
	entries, err := d.ReadDir(-1)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		if err := p.addEntry(d, storePath, filepath.Join(path, e.Name()), name+"/"+e.Name(), e.Type()); err != nil {
			return err
		}
	}
	return nil
}

// whiteoutPrefix starts the names OCI layers use for whiteouts: a reader
// unpacking .wh.NAME deletes NAME below it instead of creating a file,
// and .wh..wh..opq hides the whole directory's lower content.
const whiteoutPrefix = ".wh."

func isWhiteout(base string) bool { return strings.HasPrefix(base, whiteoutPrefix) }

func whiteoutError(storePath, entry string) error {
	return fmt.Errorf("store path %s holds %s: OCI layers cannot hold names starting with %s (readers take them for whiteouts)", storePath, entry, whiteoutPrefix)
}

// openAt opens the entry name of dir for reading, never through a
// symlink: a symlink fails with ELOOP.
func openAt(dir *os.File, name string, flags int) (*os.File, error) {
	for {
		fd, err := unix.Openat(int(dir.Fd()), name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|flags, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		return os.NewFile(uintptr(fd), filepath.Join(dir.Name(), name)), nil
	}
}

// readlinkAt reads the symlink name of dir.
func readlinkAt(dir *os.File, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(int(dir.Fd()), name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// openFile opens the file name of dir to pack (openAt). Tests replace it
// to make files vanish or change.
var openFile = func(dir *os.File, name string) (*os.File, error) { return openAt(dir, name, 0) }

// addFile copies a regular file, checking that it does not change size
// while it is read.
func (p *packer) addFile(dir *os.File, path, name string) error {
	f, err := openFile(dir, filepath.Base(path))
	if errors.Is(err, syscall.ELOOP) {
		return fmt.Errorf("%s changed while it was packed (it is a symlink now)", path)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("%s changed while it was packed", path)
	}
	mode := int64(fileMode)
	if info.Mode()&0o111 != 0 {
		mode = execMode
	}
	h := p.header(name, tar.TypeReg, mode)
	h.Size = info.Size()
	if err := p.writeHeader(h); err != nil {
		return err
	}
	// Large reads keep the per-call cost of hashing and pgzip low; hiding
	// WriterTo makes io.CopyBuffer use the buffer. The context is checked
	// before each read, so a signal stops a large file within one buffer.
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	src := &readSide{r: ctxio.Reader(p.ctx, f)}
	n, err := io.CopyBuffer(p.tw, src, *buf)
	switch {
	case err == nil:
	case p.ctx.Err() != nil:
		return err
	case err == tar.ErrWriteTooLong:
		return fmt.Errorf("%s grew while it was packed", path)
	case src.err != nil:
		return fmt.Errorf("read %s: %w", path, err)
	default:
		// The layer's file, not the store path (a full disk).
		return fmt.Errorf("write the layer (at %s): %w", path, err)
	}
	if n != info.Size() {
		return fmt.Errorf("%s shrank while it was packed", path)
	}
	return nil
}

// readSide is a file being packed, keeping its read error, so that a
// copy's error is told as a read or as a write (of the layer).
type readSide struct {
	r   io.Reader
	err error
}

func (s *readSide) Read(b []byte) (int, error) {
	n, err := s.r.Read(b)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// copyBuffers are the file copy buffers, kept between layers: a build
// packs or verifies dozens of layers, many at once.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

func kind(t fs.FileMode) string {
	switch {
	case t&fs.ModeSocket != 0:
		return "socket"
	case t&fs.ModeNamedPipe != 0:
		return "fifo"
	case t&fs.ModeCharDevice != 0:
		return "character device"
	case t&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}
