package nix

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

func TestLineWriter(t *testing.T) {
	var out bytes.Buffer
	var mu sync.Mutex
	w := &lineWriter{mu: &mu, w: &out, prefix: "[aarch64-linux] "}
	for _, chunk := range []string{"buil", "ding 'a'...\nfirst\r\n", "\nlast without newline"} {
		_, err := w.Write([]byte(chunk))
		assert.NilError(t, err)
	}
	assert.Equal(t, out.String(), "[aarch64-linux] building 'a'...\n[aarch64-linux] first\n[aarch64-linux] \n")
	w.Flush()
	assert.Equal(t, strings.Count(out.String(), "\n"), 4)
	assert.Assert(t, strings.HasSuffix(out.String(), "[aarch64-linux] last without newline\n"))

	// A nil destination discards.
	quiet := &lineWriter{mu: &mu, prefix: "x "}
	_, err := quiet.Write([]byte("a\nb"))
	assert.NilError(t, err)
	quiet.Flush()
}

func TestTailBuffer(t *testing.T) {
	tb := &tailBuffer{max: 10}
	for _, s := range []string{"0123456", "789abcdef", "XY"} {
		_, _ = tb.Write([]byte(s))
	}
	assert.Equal(t, string(tb.buf), "89abcdefXY")
}

func TestSummarize(t *testing.T) {
	stderr := "building '/nix/store/x.drv'...\nerror: builder for '/nix/store/x.drv' failed with exit code 3;\n       last 1 log lines:\n       > boom\n(use '--show-trace' to show detailed location information)\n"
	head, tail := summarize(stderr)
	assert.Equal(t, head, "builder for '/nix/store/x.drv' failed with exit code 3;")
	assert.Equal(t, tail, "\n    building '/nix/store/x.drv'...\n    error: builder for '/nix/store/x.drv' failed with exit code 3;\n           last 1 log lines:\n           > boom")

	var long []string
	for i := 0; i < 40; i++ {
		long = append(long, "line")
	}
	_, tail = summarize("error: first\n" + strings.Join(long, "\n"))
	assert.Equal(t, strings.Count(tail, "\n"), tailLines)

	head, tail = summarize("")
	assert.Equal(t, head+tail, "")
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		10 * time.Minute:                 "10m",
		time.Hour:                        "1h",
		90 * time.Minute:                 "1h30m",
		3 * time.Second:                  "3s",
		90 * time.Second:                 "1m30s",
		1500 * time.Millisecond:          "1.5s",
		time.Hour + 30*time.Second:       "1h0m30s",
		2*time.Hour + 10*time.Minute + 0: "2h10m",
	} {
		assert.Equal(t, shortDuration(d), want)
	}
}

func TestCheckSystem(t *testing.T) {
	for _, ok := range []string{"x86_64-linux", "aarch64-linux", "armv7l-linux", "powerpc64le-linux", "i686-linux"} {
		assert.NilError(t, checkSystem(ok))
	}
	for _, bad := range []string{"", "x86_64", "-linux", "x86_64-", "x86_64-linux.hello", "x86_64-linux#a", "X86_64-linux", "x86 64-linux"} {
		assert.Assert(t, checkSystem(bad) != nil, bad)
	}
}

// Output without newlines is cut into bounded lines, not held whole.
func TestLineWriterLongLine(t *testing.T) {
	var out bytes.Buffer
	l := &lineWriter{mu: new(sync.Mutex), w: &out, prefix: "[x] "}
	chunk := []byte(strings.Repeat("a", 1000))
	for range 300 {
		l.Write(chunk)
	}
	assert.Check(t, len(l.buf) < maxLine, "held %d bytes", len(l.buf))
	l.Flush()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	assert.Check(t, len(lines) == 5, "%d lines", len(lines))
	for _, line := range lines {
		assert.Check(t, strings.HasPrefix(line, "[x] ") && len(line) <= len("[x] ")+maxLine)
	}
}
