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
		if err := p.tw.WriteHeader(p.header(n, tar.TypeDir, dirMode)); err != nil {
			return err
		}
	}
	return nil
}

// addTree writes the tree at root, in lexical order, under the tar name
// name (root's own entry) and name/... for what is below it.
func (p *packer) addTree(root, name string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		return p.addEntry(root, path, name+strings.TrimPrefix(path, root), d)
	})
}

func (p *packer) addEntry(root, path, name string, d fs.DirEntry) error {
	if err := p.ctx.Err(); err != nil {
		return err
	}
	if isWhiteout(d.Name()) {
		return whiteoutError(root, path)
	}
	switch t := d.Type(); {
	case t.IsDir():
		return p.dirs(name + "/")
	case t&fs.ModeSymlink != 0:
		target, err := os.Readlink(path)
		if err != nil {
			return fmt.Errorf("read symlink %s: %w", path, err)
		}
		h := p.header(name, tar.TypeSymlink, symlinkMode)
		h.Linkname = target
		return p.tw.WriteHeader(h)
	case t.IsRegular():
		return p.addFile(path, name)
	default:
		return fmt.Errorf("%s is a %s: store paths may hold only files, directories and symlinks", path, kind(t))
	}
}

// whiteoutPrefix starts the names OCI layers use for whiteouts: a reader
// unpacking .wh.NAME deletes NAME below it instead of creating a file,
// and .wh..wh..opq hides the whole directory's lower content.
const whiteoutPrefix = ".wh."

func isWhiteout(base string) bool { return strings.HasPrefix(base, whiteoutPrefix) }

func whiteoutError(storePath, entry string) error {
	return fmt.Errorf("store path %s holds %s: OCI layers cannot hold names starting with %s (readers take them for whiteouts)", storePath, entry, whiteoutPrefix)
}

// openFile opens files to pack, never through a symlink: a file swapped
// for a link while the store path is walked would put the link's target,
// from anywhere on the host, into the layer. Tests replace it to make
// files vanish.
var openFile = func(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
}

// addFile copies a regular file, checking that it does not change size
// while it is read.
func (p *packer) addFile(path, name string) error {
	f, err := openFile(path)
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
	if err := p.tw.WriteHeader(h); err != nil {
		return err
	}
	// Large reads keep the per-call cost of hashing and pgzip low; hiding
	// WriterTo makes io.CopyBuffer use the buffer. The context is checked
	// before each read, so a signal stops a large file within one buffer.
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	n, err := io.CopyBuffer(p.tw, ctxio.Reader(p.ctx, f), *buf)
	if err != nil {
		if p.ctx.Err() != nil {
			return err
		}
		if err == tar.ErrWriteTooLong {
			return fmt.Errorf("%s grew while it was packed", path)
		}
		return fmt.Errorf("read %s: %w", path, err)
	}
	if n != info.Size() {
		return fmt.Errorf("%s shrank while it was packed", path)
	}
	return nil
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
