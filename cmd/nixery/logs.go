package main

import (
	"bytes"
	"io"
	"sync"

	"github.com/nixery-action/nixery-action/pkg/ghaction"
)

// logSink gives the writer for one platform's progress ("" for progress
// that belongs to no platform) and a function to call when it is done.
type logSink func(platform string) (io.Writer, func())

// prefixLogs writes every platform's progress to w as it comes; lines
// carry their platform already, so they can interleave.
func prefixLogs(w io.Writer) logSink {
	sw := &syncWriter{w: w}
	return func(string) (io.Writer, func()) { return sw, func() {} }
}

// groupedLogs holds each platform's progress until it is done and then
// writes it in one piece, between the start and end lines that group
// returns (GitHub's ::group:: lines), so groups never interleave.
func groupedLogs(w io.Writer, group func(platform string) (start, end string)) logSink {
	// Lines of no platform (cache, uploads) go out as they come, between
	// the groups; a group goes out whole, under the same lock.
	out := &syncWriter{w: w}
	return func(platform string) (io.Writer, func()) {
		if platform == "" {
			return out, func() {}
		}
		buf := &syncWriter{w: &bytes.Buffer{}}
		return buf, func() {
			start, end := group(platform)
			buf.mu.Lock()
			defer buf.mu.Unlock()
			out.Write([]byte(start + buf.w.(*bytes.Buffer).String() + end))
		}
	}
}

// safeLogs passes everything written to sink's writers through
// ghaction.LineWriter: in action mode the logs carry Nix's output, registry
// errors and cache notes, none of which may issue a workflow command.
func safeLogs(sink logSink) logSink {
	return func(platform string) (io.Writer, func()) {
		w, end := sink(platform)
		lw := ghaction.NewLineWriter(w)
		return lw, func() {
			lw.Flush()
			end()
		}
	}
}

// syncWriter lets several goroutines write whole lines to one writer.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
