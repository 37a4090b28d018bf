// Package plaintar is the yardstick the packing benchmarks measure
// against: a tar of store paths written the simple way, as Nixery's
// builder wrote a layer (headers from each file's metadata, no sorting or
// normalising), hashed on the way as a layer's diffID needs. It is not
// used by the shipped binary.
package plaintar

import (
	"archive/tar"
	"crypto/sha256"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/nixery-action/nixery-action/internal/counting"
)

// Write writes the tar of roots to w and returns its length and its
// sha256 (the diffID). Entries other than files, directories and
// symlinks are left out.
func Write(w io.Writer, roots []string) (n int64, diffID []byte, err error) {
	diff := sha256.New()
	counted := &counting.Writer{W: io.MultiWriter(diff, w)}
	tw := tar.NewWriter(counted)
	for _, root := range roots {
		if err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return add(tw, path, d)
		}); err != nil {
			return 0, nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return 0, nil, err
	}
	return counted.N, diff.Sum(nil), nil
}

// add writes one entry of the walk.
func add(tw *tar.Writer, path string, d fs.DirEntry) error {
	info, err := d.Info()
	if err != nil {
		return err
	}
	var link string
	switch {
	case d.Type()&fs.ModeSymlink != 0:
		if link, err = os.Readlink(path); err != nil {
			return err
		}
	case !d.Type().IsRegular() && !d.IsDir():
		return nil
	}
	h, err := tar.FileInfoHeader(info, link)
	if err != nil {
		return err
	}
	h.Name = strings.TrimPrefix(path, "/")
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	if !d.Type().IsRegular() {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(tw, f)
	return err
}
