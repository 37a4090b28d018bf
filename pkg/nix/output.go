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

// summarize turns Nix's stderr into an error text: a headline from its
// first error (see headline), then its last lines, indented.
func summarize(stderr string) (head, tail string) {
	stderr = string(stripANSI([]byte(stderr)))
	var lines []string
	for _, l := range strings.Split(stderr, "\n") {
		// Nix's hint about --show-trace is no help to our users.
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "(use '--show-trace'") {
			lines = append(lines, strings.TrimRight(l, " \r"))
		}
	}
	head = headline(errorBlocks(lines))
	if len(lines) > tailLines {
		lines = lines[len(lines)-tailLines:]
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("\n    ")
		b.WriteString(l)
	}
	return head, b.String()
}

// errorBlock is one error Nix printed: the text of its "error: " line and
// the indented lines that go on with it, trimmed.
type errorBlock struct {
	first string
	more  []string
}

// errorBlocks finds Nix's errors in its stderr lines (without colours).
func errorBlocks(lines []string) []errorBlock {
	var blocks []errorBlock
	in := false // the line before belongs to the last block
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if rest, ok := strings.CutPrefix(t, "error: "); ok {
			blocks = append(blocks, errorBlock{first: rest})
			in = true
			continue
		}
		in = in && t != "" && strings.HasPrefix(l, " ") // continuation lines are indented
		if in {
			last := &blocks[len(blocks)-1]
			last.more = append(last.more, t)
		}
	}
	return blocks
}

// dependencyFailed is the reason Nix 2.30 and later give for every
// derivation above the one that failed.
var dependencyFailed = regexp.MustCompile(`^\d+ (dependency|dependencies) failed\.?$`)

// headline is Nix's first error in one line. From Nix 2.30 on, a failed
// build says "Cannot build '…drv'." and why on the lines after it, once
// for the failing derivation and once ("1 dependency failed") for each
// derivation above it: the headline is then the first such error whose
// reason is not a failed dependency, with its reason on the same line.
// Nix 2.8's one-line errors are left as they are.
func headline(blocks []errorBlock) string {
	if len(blocks) == 0 {
		return ""
	}
	if !strings.HasPrefix(blocks[0].first, "Cannot build ") {
		return blocks[0].first
	}
	for _, b := range blocks {
		if r := b.reason(); r != "" && strings.HasPrefix(b.first, "Cannot build ") && !dependencyFailed.MatchString(r) {
			return b.withReason()
		}
	}
	return blocks[0].withReason()
}

// reason is what the block's "Reason:" lines say, joined, without their
// full stops.
func (b errorBlock) reason() string {
	var rs []string
	for _, l := range b.more {
		if r, ok := strings.CutPrefix(l, "Reason: "); ok {
			rs = append(rs, strings.TrimSuffix(strings.TrimSpace(r), "."))
		}
	}
	return strings.Join(rs, "; ")
}

// withReason is the block's first line and its reason as one line:
// "Cannot build '…drv': builder failed with exit code 2".
func (b errorBlock) withReason() string {
	r := b.reason()
	if r == "" {
		return b.first
	}
	return strings.TrimSuffix(b.first, ".") + ": " + r
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
