package nix

import (
	"bytes"
	"io"
	"regexp"
	"strings"
	"sync"

	"github.com/nixery-action/nixery-action/pkg/flakeref"
)

// lineWriter copies Nix's stderr to the caller's writer one whole line at
// a time, each line prefixed (e.g. with the system), so that the output
// of builds running side by side does not interleave mid-line.
type lineWriter struct {
	mu      *sync.Mutex // shared by every writer to the same destination
	w       io.Writer
	prefix  string
	secrets []string // credentials of flake references, hidden in every line
	buf     []byte
}

// maxLine bounds a line held for its newline: a longer one is cut into
// lines of this length, so that output without newlines neither fills
// memory nor is scanned again with every write.
const maxLine = 64 << 10

func (l *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i >= 0 {
			l.buf = append(l.buf, p[:i]...)
			l.emit(l.buf)
			l.buf, p = l.buf[:0], p[i+1:]
			continue
		}
		l.buf, p = append(l.buf, p...), nil
		for len(l.buf) >= maxLine {
			l.emit(l.buf[:maxLine])
			l.buf = append(l.buf[:0], l.buf[maxLine:]...)
		}
	}
	return n, nil
}

// Flush writes a last line that had no newline.
func (l *lineWriter) Flush() {
	if len(l.buf) > 0 {
		l.emit(l.buf)
		l.buf = nil
	}
}

func (l *lineWriter) emit(line []byte) {
	line = stripANSI(bytes.TrimRight(line, "\r"))
	if l.w == nil {
		return
	}
	text := flakeref.Scrub(string(line), l.secrets)
	out := make([]byte, 0, len(l.prefix)+len(text)+1)
	out = append(append(append(out, l.prefix...), text...), '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	// A broken log must not fail the build.
	_, _ = l.w.Write(out)
}

// tailBuffer keeps the last bytes written to it: enough of Nix's stderr to
// explain a failure.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// tailLines is how many of Nix's last lines an error quotes.
const tailLines = 15

// summarize turns Nix's stderr into an error text: its first "error:"
// line as the headline, then its last lines, indented.
func summarize(stderr string) (headline, tail string) {
	stderr = string(stripANSI([]byte(stderr)))
	var lines []string
	for _, l := range strings.Split(stderr, "\n") {
		// Nix's hint about --show-trace is no help to our users.
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "(use '--show-trace'") {
			lines = append(lines, strings.TrimRight(l, " \r"))
		}
	}
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "error: "); ok {
			headline = rest
			break
		}
	}
	if len(lines) > tailLines {
		lines = lines[len(lines)-tailLines:]
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("\n    ")
		b.WriteString(l)
	}
	return headline, b.String()
}

// ansiEscape matches terminal escape sequences: CSI (colours, cursor
// movement) and OSC (hyperlinks, titles), and any other two-byte ESC
// sequence.
var ansiEscape = regexp.MustCompile(`\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])`)

// stripANSI removes terminal escape sequences. Nix runs with NO_COLOR=1,
// but a Nix that colours anyway must not break the matching of its
// messages nor put escape codes into errors.
func stripANSI(b []byte) []byte {
	if bytes.IndexByte(b, 0x1b) < 0 {
		return b
	}
	return ansiEscape.ReplaceAll(b, nil)
}
