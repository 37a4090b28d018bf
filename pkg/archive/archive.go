// Package archive packs store paths into image layer blobs: a reproducible
// tar stream compressed in parallel with pgzip (or zstd), hashed on the
// way through, so one pass over the files yields the diffID, the digest
// and the size.
//
// The same input gives the same bytes whatever the machine: entries are
// sorted, owners, times and modes are normalised, pgzip's output depends
// only on the level and block size, and zstd's only on the level and
// window (newZstd), never on the concurrency.
package archive

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"runtime"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"

	"github.com/nixery-action/nixery-action/internal/counting"
)

// FormatVersion changes whenever the bytes packed for the same input
// change, so caches keyed by it never mix two formats. Updating pgzip or
// klauspost/compress may change them (TestPackZstdReproducible pins
// zstd's).
// 2: headers with names that are not UTF-8 carry hdrcharset=BINARY.
const FormatVersion = "2"

// DefaultLevel is the gzip level used when Options.Level is 0. Measured
// on 615 MB of store paths (docs/packing.md), it packs about 7 times as
// fast as compress/gzip's default level on 2 cores with output 6% larger;
// level 3 is a little faster but 9% larger, level 5 slower.
const DefaultLevel = 4

// blockSize is pgzip's block size. The compressed bytes depend on it, so
// it is fixed rather than tuned to the machine.
const blockSize = 1 << 20

// DefaultModTime is the time of every entry, whatever the image's
// creation time: one second after the epoch, as Nix dates store paths (and
// some tools treat 0 as unset). A layer's bytes then follow from its
// content alone, so images created at other times (other commits, other
// SOURCE_DATE_EPOCHs) share their layers, as Nix's image builders do.
var DefaultModTime = time.Unix(1, 0).UTC()

// Options tune packing. The zero value is the default.
type Options struct {
	// Compression is gzip (the default, also for "") or zstd.
	Compression Compression
	// Level is the compression's level: gzip 1 to 9, zstd 1 to 22 (on
	// zstd's scale, see zstdLevel); 0 means its default (DefaultLevel,
	// DefaultZstdLevel).
	Level int
	// Concurrency is how many blocks (zstd: jobs, 2 to 16) may be
	// compressed at once; 0 means GOMAXPROCS. It changes the speed, never
	// the bytes.
	Concurrency int
	// Uncompressed writes the plain tar instead of the compressed blob; the
	// Blob's Digest is then its DiffID. It is for checking a layer's
	// content (a cached blob's diffID) at tar speed, never for images.
	Uncompressed bool
	// Progress, when set, is told how many uncompressed bytes were just
	// written, as packing goes (for progress displays).
	Progress func(n int)
	// Context, when set, stops packing once it is done: between entries
	// and within a file, a read buffer at a time. Packing then fails
	// with its error.
	Context context.Context
}

// MaxConcurrency bounds Options.Concurrency: more blocks in flight than
// this only hold memory (1 MiB each, twice).
const MaxConcurrency = 256

// Validate checks the compression, level and concurrency.
func (o Options) Validate() error {
	c := o.Compression
	if c != "" && c != Gzip && c != Zstd {
		return fmt.Errorf("unknown compression %q: use gzip or zstd", string(c))
	}
	if o.Level != 0 && (o.Level < 1 || o.Level > c.MaxLevel()) {
		return fmt.Errorf("%s level %d is out of range: use 1 to %d", c, o.Level, c.MaxLevel())
	}
	if o.Concurrency < 0 || o.Concurrency > MaxConcurrency {
		return fmt.Errorf("compression concurrency %d is out of range: use 1 to %d, or 0 for one per CPU", o.Concurrency, MaxConcurrency)
	}
	return nil
}

// Blob describes a packed layer.
type Blob struct {
	Digest string `json:"digest"` // sha256 of the compressed blob, "sha256:<hex>"
	DiffID string `json:"diffID"` // sha256 of the uncompressed tar
	Size   int64  `json:"size"`   // bytes of the compressed blob
	// MediaType is the blob's OCI layer media type (its compression's);
	// empty for an uncompressed tar.
	MediaType string `json:"mediaType,omitempty"`
}

// packer is the pipeline tar → (diffID hash, pgzip or zstd) → (digest
// hash, counter, destination).
type packer struct {
	tw      *tar.Writer
	gz      *pgzip.Writer
	zw      *zstd.Encoder
	gate    *gateWriter // zw's destination
	closed  bool
	media   string
	diffID  hash.Hash
	digest  hash.Hash
	counter counting.Writer
	ctx     context.Context
}

func newPacker(w io.Writer, o Options) (*packer, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	level := o.Level
	if level == 0 {
		level = o.Compression.DefaultLevel()
	}
	inFlight := o.Concurrency
	if inFlight <= 0 {
		inFlight = runtime.GOMAXPROCS(0)
	}
	// pgzip compresses one block more than its "blocks" setting (the one
	// its writer goroutine waits on). One more block than CPUs was never
	// faster on 2 cores, and up to 14% slower under load from elsewhere
	// (BenchmarkPackPaths/concurrency=2 and 3); it also holds more memory.
	blocks := max(inFlight-1, 1)
	p := &packer{digest: sha256.New(), ctx: o.Context}
	if p.ctx == nil {
		p.ctx = context.Background()
	}
	p.counter.W = io.MultiWriter(p.digest, w)
	var progress io.Writer = io.Discard
	if o.Progress != nil {
		progress = progressWriter(o.Progress)
	}
	if o.Uncompressed {
		// The blob is the tar: one hash serves as digest and diffID.
		p.tw = tar.NewWriter(io.MultiWriter(&p.counter, progress))
		return p, nil
	}
	p.media = o.Compression.MediaType()
	p.diffID = sha256.New()
	if o.Compression == Zstd {
		p.gate = &gateWriter{w: &p.counter}
		zw, err := newZstd(p.gate, level, o.Concurrency)
		if err != nil {
			return nil, err
		}
		p.zw = zw
		p.tw = tar.NewWriter(io.MultiWriter(p.diffID, p.zw, progress))
		return p, nil
	}
	gz, err := pgzip.NewWriterLevel(&p.counter, level)
	if err != nil {
		return nil, err
	}
	if err := gz.SetConcurrency(blockSize, blocks); err != nil {
		return nil, err
	}
	// A zero time would write a garbage MTIME; the epoch writes zero,
	// which gzip defines as "no time".
	gz.ModTime = time.Unix(0, 0)
	p.gz = gz
	p.tw = tar.NewWriter(io.MultiWriter(p.diffID, gz, progress))
	return p, nil
}

// close flushes the tar and compressed streams and returns the blob's
// hashes.
func (p *packer) close() (Blob, error) {
	if err := p.tw.Close(); err != nil {
		return Blob{}, err
	}
	if p.gz != nil {
		if err := p.gz.Close(); err != nil {
			return Blob{}, err
		}
	}
	if p.zw != nil {
		p.closed = true
		if err := p.zw.Close(); err != nil {
			return Blob{}, err
		}
	}
	b := Blob{Digest: "sha256:" + hex.EncodeToString(p.digest.Sum(nil)), Size: p.counter.N, MediaType: p.media}
	b.DiffID = b.Digest
	if p.diffID != nil {
		b.DiffID = "sha256:" + hex.EncodeToString(p.diffID.Sum(nil))
	}
	return b, nil
}

// abort stops a packer that failed, unless it was closed: what the zstd
// encoder still has is dropped instead of written, and its goroutines
// end in the background, not waited for (at high levels a block takes
// seconds, and a cancelled build should stop at once).
func (p *packer) abort() {
	if p.zw == nil || p.closed {
		return
	}
	p.closed = true
	p.gate.shut.Store(true)
	go p.zw.Close()
}

// header is the normalised header every entry starts from.
func (p *packer) header(name string, typ byte, mode int64) *tar.Header {
	return &tar.Header{
		Typeflag: typ,
		Name:     name,
		Mode:     mode,
		ModTime:  DefaultModTime,
		// Format left unset: USTAR where it fits, PAX for long or
		// non-ASCII names, chosen from the header alone.
	}
}

// writeHeader writes h. A header with a name that is not UTF-8 (a store
// path may hold any bytes in a file or link target name) gets the PAX
// record hdrcharset=BINARY: POSIX reads PAX names as UTF-8 without it, and
// bsdtar fails on them. Every other header is written as it is.
func (p *packer) writeHeader(h *tar.Header) error {
	if !utf8Names(h) {
		h.PAXRecords = map[string]string{"hdrcharset": "BINARY"}
	}
	return p.tw.WriteHeader(h)
}

// utf8Names tells whether every name of h that archive/tar may write as a
// PAX record (path, linkpath, uname, gname) is valid UTF-8.
func utf8Names(h *tar.Header) bool {
	for _, s := range []string{h.Name, h.Linkname, h.Uname, h.Gname} {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

// progressWriter reports the length of each write.
type progressWriter func(n int)

func (f progressWriter) Write(b []byte) (int, error) {
	f(len(b))
	return len(b), nil
}
