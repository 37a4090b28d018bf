package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/nixery-action/nixery-action/pkg/build"
	"github.com/nixery-action/nixery-action/pkg/publish"
)

// progress shows each layer being packed and uploaded: live bars on a
// terminal, plain timestamped lines elsewhere (CI logs, files).
type progress interface {
	layer(build.Event)
	upload(publish.UploadProgress)
	// logs is where other progress lines go, so that they do not tear
	// the display.
	logs() logSink
	// stop ends the display; call it before printing the result.
	stop()
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// newProgress picks the display for w.
func newProgress(w io.Writer) progress {
	if isTerminal(w) {
		return newBars(w)
	}
	return newLines(prefixLogs(w), time.Now)
}

// labels remembers which platform's layer a blob digest is, so that an
// upload can be named the way its packing was.
type labels struct {
	mu       sync.Mutex
	byDigest map[string]string
}

func (l *labels) set(e build.Event) {
	if e.Digest == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byDigest == nil {
		l.byDigest = map[string]string{}
	}
	if _, ok := l.byDigest[e.Digest]; !ok {
		l.byDigest[e.Digest] = layerLabel(e)
	}
}

func (l *labels) of(u publish.UploadProgress) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s, ok := l.byDigest[u.Digest.String()]; ok {
		return s
	}
	if u.Digest.Hex != "" {
		return u.Digest.Hex[:12]
	}
	return "a layer being packed"
}

func layerLabel(e build.Event) string {
	return fmt.Sprintf("[%s] layer %d/%d", e.Platform, e.Layer, e.Layers)
}

// lines prints a line when a layer is packed, reused or uploaded, and
// for long work one every lineEvery with bytes, rate and time left.
type lines struct {
	sink  logSink
	now   func() time.Time
	names labels

	mu      sync.Mutex
	started map[any]time.Time // per layer or upload
	printed map[any]time.Time
}

const lineEvery = 5 * time.Second

func newLines(sink logSink, now func() time.Time) *lines {
	return &lines{sink: sink, now: now, started: map[any]time.Time{}, printed: map[any]time.Time{}}
}

func (l *lines) logs() logSink { return l.sink }
func (l *lines) stop()         {}

func (l *lines) printf(platform, format string, args ...any) {
	w, end := l.sink(platform)
	fmt.Fprintf(w, "%s %s\n", l.now().Format("15:04:05"), fmt.Sprintf(format, args...))
	end()
}

// since notes the start of work on key and returns how long it has run
// and whether a progress line is due.
func (l *lines) since(key any, finished bool) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	start, ok := l.started[key]
	if !ok {
		start = now
		l.started[key] = now
		l.printed[key] = now
	}
	due := !finished && now.Sub(l.printed[key]) >= lineEvery
	if due {
		l.printed[key] = now
	}
	if finished {
		delete(l.started, key)
		delete(l.printed, key)
	}
	return now.Sub(start), due
}

func (l *lines) layer(e build.Event) {
	l.names.set(e)
	key := [2]any{e.Platform, e.Layer}
	took, due := l.since(key, e.Stage != build.Packing)
	switch e.Stage {
	case build.Packing:
		if due {
			l.printf(e.Platform, "%s packing: %s", layerLabel(e), rateLine(e.Done, e.Total, took))
		}
	case build.Packed:
		l.printf(e.Platform, "%s packed: %s in %s", layerLabel(e), humanSize(e.Size), seconds(took))
	case build.Reused:
		l.printf(e.Platform, "%s reused from the cache: %s", layerLabel(e), humanSize(e.Size))
	}
}

func (l *lines) upload(u publish.UploadProgress) {
	took, due := l.since(u.Blob, u.Done)
	switch {
	case u.Done:
		l.printf("", "uploaded %s: %s in %s (%s)", l.names.of(u), humanSize(u.Sent), seconds(took), rate(u.Sent, took))
	case due:
		l.printf("", "uploading %s: %s", l.names.of(u), rateLine(u.Sent, u.Total, took))
	}
}

// rateLine is "120.0 MiB of 450.0 MiB, 56.0 MiB/s, about 6 s left", with
// what is unknown left out.
func rateLine(done, total int64, took time.Duration) string {
	s := humanSize(done)
	if total > 0 {
		s += " of " + humanSize(total)
	}
	s += ", " + rate(done, took)
	if total > done && done > 0 && took > 0 {
		left := time.Duration(float64(total-done) / float64(done) * float64(took))
		s += ", about " + seconds(left) + " left"
	}
	return s
}

func rate(n int64, took time.Duration) string {
	if took <= 0 {
		return "- /s"
	}
	return humanSize(int64(float64(n)/took.Seconds())) + "/s"
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

// bars is the live display: a bar per layer being packed or uploaded,
// gone when done, with log lines printed above them.
type bars struct {
	p     *mpb.Progress
	names labels

	mu   sync.Mutex
	bars map[any]*mpb.Bar
}

func newBars(w io.Writer) *bars {
	return &bars{p: mpb.New(mpb.WithOutput(w), mpb.WithWidth(32), mpb.WithAutoRefresh()), bars: map[any]*mpb.Bar{}}
}

func (b *bars) logs() logSink { return prefixLogs(b.p) }

func (b *bars) stop() {
	b.mu.Lock()
	for _, bar := range b.bars {
		bar.Abort(true)
	}
	b.bars = map[any]*mpb.Bar{}
	b.mu.Unlock()
	b.p.Wait()
}

// bar returns the bar of key, made with name and total the first time.
func (b *bars) bar(key any, name string, total int64) *mpb.Bar {
	b.mu.Lock()
	defer b.mu.Unlock()
	if bar, ok := b.bars[key]; ok {
		return bar
	}
	bar := b.p.AddBar(max(total, 0),
		mpb.PrependDecorators(decor.Name(name, decor.WCSyncSpaceR)),
		mpb.AppendDecorators(
			decor.Counters(decor.SizeB1024(0), "% .1f / % .1f", decor.WCSyncSpace),
			decor.EwmaSpeed(decor.SizeB1024(0), "% .1f", 30, decor.WCSyncSpace),
			decor.EwmaETA(decor.ET_STYLE_GO, 30, decor.WCSyncSpace),
		),
		mpb.BarRemoveOnComplete(),
	)
	b.bars[key] = bar
	return bar
}

func (b *bars) done(key any) {
	b.mu.Lock()
	bar, ok := b.bars[key]
	delete(b.bars, key)
	b.mu.Unlock()
	if ok {
		bar.SetTotal(-1, true)
	}
}

func (b *bars) layer(e build.Event) {
	b.names.set(e)
	key := [2]any{e.Platform, e.Layer}
	switch e.Stage {
	case build.Packing:
		bar := b.bar(key, layerLabel(e)+" packing", e.Total)
		bar.EwmaSetCurrent(e.Done, build.ProgressEvery)
	default:
		b.done(key)
	}
}

func (b *bars) upload(u publish.UploadProgress) {
	if u.Done {
		b.done(u.Blob)
		return
	}
	bar := b.bar(u.Blob, b.names.of(u)+" uploading", u.Total)
	bar.EwmaSetCurrent(u.Sent, 100*time.Millisecond)
}
