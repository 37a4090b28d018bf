// Package limit reads input up to a bound, so that an endless or huge
// stream (a device such as /dev/zero, a hostile server) costs no more
// memory than the bound, and saying so is an error callers can name.
package limit

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Error says that input went past its bound.
type Error struct {
	Bound int64 // bytes
}

func (e *Error) Error() string { return "larger than " + Size(e.Bound) }

// Size formats a bound for messages: "256 MiB", "64 KiB", "1000 bytes".
func Size(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// Reader returns a reader of r that fails with *Error once more than
// bound bytes would be read.
func Reader(r io.Reader, bound int64) io.Reader {
	return &reader{r: r, left: bound, bound: bound}
}

type reader struct {
	r     io.Reader
	left  int64 // bytes that may still be read
	bound int64
}

func (l *reader) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, &Error{Bound: l.bound}
	}
	// Read one byte past the bound to tell "exactly the bound" from "more".
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n + int(l.left), &Error{Bound: l.bound}
	}
	return n, err
}

// ReadAll reads in pieces that double from firstChunk to chunk bytes and
// are joined once at the end, so that small input costs little and a
// stream that goes past the bound never holds more than the bound plus a
// chunk.
const (
	firstChunk = 4 << 10
	chunk      = 4 << 20
)

// CheckSize fails with *Error when r is a regular file larger than
// bound, so that it need not be read to find out.
func CheckSize(r io.Reader, bound int64) error {
	if f, ok := r.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > bound {
			return &Error{Bound: bound}
		}
	}
	return nil
}

// ReadAll reads all of r, failing with *Error when it holds more than
// bound bytes. A regular file's size is checked before reading.
func ReadAll(r io.Reader, bound int64) ([]byte, error) {
	if err := CheckSize(r, bound); err != nil {
		return nil, err
	}
	lr := Reader(r, bound)
	var pieces [][]byte
	total, size := 0, firstChunk
	for {
		buf := make([]byte, size)
		size = min(2*size, chunk)
		n, err := io.ReadFull(lr, buf)
		pieces = append(pieces, buf[:n])
		total += n
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	out := make([]byte, 0, total)
	for _, p := range pieces {
		out = append(out, p...)
	}
	return out, nil
}
