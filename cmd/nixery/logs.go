package main

import (
	"bytes"
	"fmt"
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

// groups holds each platform's progress and writes it as one group
// (between the start and end lines that mark returns: GitHub's ::group::
// lines) once the platform is done, so that a platform has exactly one
// group and groups never interleave. Groups go out in the order their
// platforms were first opened (pkg/build opens them in platform order); a
// platform done before an earlier one waits for it. Lines of no platform
// go out as they come, between the groups.
type groups struct {
	mark func(platform string) (start, end string)

	mu     sync.Mutex
	w      io.Writer
	order  []*group
	byName map[string]*group
}

// group is one platform's held lines; open counts its writers not yet
// ended: the platform is done when none is left. What is held is bounded
// (a chatty evaluation, or -L, must not fill a runner's memory): the
// first heldHead bytes and the last heldTail, with a line saying how much
// was left out between them.
type group struct {
	name    string
	buf     bytes.Buffer // the head
	tail    []byte
	dropped int64
	open    int
	done    bool
	written bool
}

const (
	heldHead = 1 << 20
	heldTail = 7 << 20
)

// hold keeps p as the bounds allow.
func (gr *group) hold(p []byte) {
	if n := min(len(p), heldHead-gr.buf.Len()); n > 0 {
		gr.buf.Write(p[:n])
		p = p[n:]
	}
	gr.tail = append(gr.tail, p...)
	if len(gr.tail) > 2*heldTail {
		gr.trim()
	}
}

// trim keeps the last heldTail bytes of the tail.
func (gr *group) trim() {
	if cut := len(gr.tail) - heldTail; cut > 0 {
		gr.dropped += int64(cut)
		gr.tail = append([]byte(nil), gr.tail[cut:]...)
	}
}

// held is what gr holds, as it goes out.
func (gr *group) held() string {
	gr.trim()
	if gr.dropped == 0 {
		return gr.buf.String() + string(gr.tail)
	}
	return fmt.Sprintf("%s\n[nixery: %d bytes of this log left out]\n%s", gr.buf.String(), gr.dropped, gr.tail)
}

func newGroups(w io.Writer, mark func(platform string) (start, end string)) *groups {
	return &groups{w: w, mark: mark, byName: map[string]*group{}}
}

// sink is the logSink that writes into the groups.
func (g *groups) sink(platform string) (io.Writer, func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if platform == "" {
		return writerFunc(g.writeDirect), func() {}
	}
	gr := g.byName[platform]
	if gr == nil {
		gr = &group{name: platform}
		g.byName[platform] = gr
		g.order = append(g.order, gr)
	}
	gr.open++
	var once sync.Once
	return writerFunc(func(p []byte) (int, error) { return g.writeTo(gr, p) }), func() {
		once.Do(func() { g.end(gr) })
	}
}

func (g *groups) writeDirect(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.w.Write(p)
}

// writeTo holds p in gr; a line that comes after gr's group went out
// goes out as it comes (it names its platform) rather than open a second
// group.
func (g *groups) writeTo(gr *group, p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if gr.written {
		return g.w.Write(p)
	}
	gr.hold(p)
	return len(p), nil
}

func (g *groups) end(gr *group) {
	g.mu.Lock()
	defer g.mu.Unlock()
	gr.open--
	if gr.open == 0 {
		gr.done = true
		g.flush()
	}
}

// flush writes the done groups that no earlier group still holds up.
func (g *groups) flush() {
	for _, gr := range g.order {
		if gr.written {
			continue
		}
		if !gr.done {
			return
		}
		start, end := g.mark(gr.name)
		io.WriteString(g.w, start+gr.held()+end)
		gr.written = true
		gr.buf.Reset()
		gr.tail = nil
	}
}

// finish writes every group still held (a platform whose writer was
// never ended), so that no line is lost.
func (g *groups) finish() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, gr := range g.order {
		gr.done = true
	}
	g.flush()
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

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
