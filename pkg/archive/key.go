package archive

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// A layer's cache key names its blob: the same key always means the same
// bytes. It is the hash of the content key (what the layer holds) and of
// everything else the bytes depend on (format version, compression,
// level, block or window size, entry time). Builds annotate each layer
// with it, and a later build finds reusable blobs by it. This file is the
// only place it is made.

// CacheKey names the blob PackPaths or PackCustomisation makes from
// content named by contentKey (a layer key: its sorted store paths) with
// these options: the same key always means the same bytes, since it covers
// everything else the bytes depend on (format version, compression, level,
// block or window size, entry time).
func CacheKey(contentKey string, o Options) (string, error) {
	if err := o.Validate(); err != nil {
		return "", err
	}
	level := o.Level
	if level == 0 {
		level = o.Compression.DefaultLevel()
	}
	// The entry time is DefaultModTime now, always; it stays in the key
	// so that blobs packed at other times by older versions (entries
	// dated SOURCE_DATE_EPOCH) never match, while theirs at
	// DefaultModTime, the same bytes, still do.
	mtime := DefaultModTime.Unix()
	h := sha256.New()
	if o.Compression == Zstd {
		// Its own lines, so a zstd blob is never taken for a gzip one or
		// the other way round; gzip keys stay as they were. Levels that
		// map to the same encoder give the same bytes, and so one key.
		fmt.Fprintf(h, "nixery-archive %s\ncompression zstd\nencoder %d\nwindow %d\nmtime %d\n%s", FormatVersion, zstdLevel(level), zstdWindow, mtime, contentKey)
	} else {
		fmt.Fprintf(h, "nixery-archive %s\nlevel %d\nblock %d\nmtime %d\n%s", FormatVersion, level, blockSize, mtime, contentKey)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// CustomisationKey is the content key of the customisation layer: its
// bytes follow from the packages' store paths and the CA bundle's alone.
// Path layers use their plan key (layers.KeyOf) instead.
func CustomisationKey(c Customisation) string {
	h := sha256.New()
	for _, line := range append([]string{"customisation", "cacert=" + c.CACert}, c.Packages...) {
		fmt.Fprintf(h, "%s\n", line)
	}
	// The files and directories made, as they are made.
	for _, f := range c.Files {
		fmt.Fprintf(h, "file %q %o %x\n", f.Path, f.Mode, sha256.Sum256(f.Data))
		if f.IfMissing {
			fmt.Fprintf(h, "if missing\n")
		}
	}
	for _, d := range c.Dirs {
		fmt.Fprintf(h, "dir %q %o %d:%d\n", d.Path, d.Mode, d.UID, d.GID)
		if d.IfMissing {
			fmt.Fprintf(h, "if missing\n")
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
