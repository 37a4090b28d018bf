package serve

import (
	"io"
	"net/http"
	"os"
	"time"
)

// stallLimit is how long a client may take none of a blob before its
// connection is dropped: one that stops reading would otherwise hold the
// connection and the blob's file (and the disk of a blob pruned since)
// for good.
const stallLimit = time.Minute

// stallChunk is how much of a blob is sent within one write deadline: a
// client taking less than that in a stallLimit (4 KiB/s) is stalled.
// Small enough for a slow link shared by several layers, large enough
// that renewing the deadline costs nothing against sendfile's work.
const stallChunk = 256 << 10

// stallBound renews the connection's write deadline before each chunk it
// writes, so that a transfer may take as long as it needs while data
// flows, and fails once none has for limit.
type stallBound struct {
	http.ResponseWriter
	rc    *http.ResponseController
	limit time.Duration
}

func (b *stallBound) renew() { b.rc.SetWriteDeadline(time.Now().Add(b.limit)) }

func (b *stallBound) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		b.renew()
		k, err := b.ResponseWriter.Write(p[:min(len(p), stallChunk)])
		n += k
		if err != nil {
			return n, err
		}
		p = p[k:]
	}
	return n, nil
}

// ReadFrom sends a part of a file (as http.ServeContent sends a blob) a
// chunk at a time, each still by sendfile; anything else (a registry
// storage's answer) is written as it is read, each write renewing the
// deadline, so that a slow source does not count against the client.
func (b *stallBound) ReadFrom(src io.Reader) (int64, error) {
	lr, ok := src.(*io.LimitedReader)
	if ok {
		_, ok = lr.R.(*os.File)
	}
	if !ok {
		return io.Copy(struct{ io.Writer }{b}, src)
	}
	var total int64
	for lr.N > 0 {
		b.renew()
		chunk := &io.LimitedReader{R: lr.R, N: min(lr.N, stallChunk)}
		n, err := io.Copy(b.ResponseWriter, chunk)
		total += n
		lr.N -= n
		if err != nil || n == 0 {
			return total, err
		}
	}
	return total, nil
}

// Unwrap gives http.ResponseController the connection's writer.
func (b *stallBound) Unwrap() http.ResponseWriter { return b.ResponseWriter }
