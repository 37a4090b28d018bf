// Package ghaction writes to a GitHub Actions runner without letting
// foreign text (registry errors, Nix's output) act as a workflow command.
// The runner treats any stdout line that starts with "::" (or the older
// "##[") as a command, so text we did not write is kept to one line per
// write and never allowed to start a line with a command prefix; in a
// command's own data it is escaped the way @actions/core does. Outputs and the
// step summary go to the runner's files with errors, not panics.
package ghaction

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"unicode"
)

// MaxInputBytes bounds one input of the action. A packages input of a
// thousand names is some 20 KiB; Linux itself refuses an environment
// variable (which is how the runner passes inputs) over 128 KiB.
const MaxInputBytes = 64 << 10

// CheckInput fails when an input's value is longer than MaxInputBytes,
// naming the input.
func CheckInput(name, value string) error {
	if len(value) > MaxInputBytes {
		return fmt.Errorf("input %s is %d bytes, more than the %d KiB an input may hold (MaxInputBytes): shorten it", name, len(value), MaxInputBytes>>10)
	}
	return nil
}

// EscapeData escapes a command's message as @actions/core does: the
// runner decodes %25, %0D and %0A back, so a message stays one line.
func EscapeData(s string) string {
	s = strings.ReplaceAll(s, "%", "%25")
	s = strings.ReplaceAll(s, "\r", "%0D")
	return strings.ReplaceAll(s, "\n", "%0A")
}

// EscapeProperty escapes a command property's value (title=..., file=...):
// also ':' and ',', which end a property.
func EscapeProperty(s string) string {
	s = EscapeData(s)
	s = strings.ReplaceAll(s, ":", "%3A")
	return strings.ReplaceAll(s, ",", "%2C")
}

// oneLine escapes line breaks as a command's data does (%0D, %0A) but
// leaves '%' as it is: the runner unescapes command data only, so in a
// plain line or the summary an escaped '%' would stay %25, garbling every
// URL and hiding its secrets from the runner's masks.
var oneLine = strings.NewReplacer("\r", "%0D", "\n", "%0A")

// Line makes foreign text safe to print as one plain log line: line breaks
// are escaped (not '%', see oneLine), a leading "::" (after any blanks) is
// defused by escaping its first character, and so is every "##[": the
// runner takes an old-style command ("##[name]...") anywhere in a line.
// The blanks are
// those the runner trims (.NET's TrimStart): Unicode's white space,
// U+00A0, U+2003, U+3000 and U+0085 among them, which unicode.IsSpace
// tells too.
func Line(s string) string {
	s = strings.ReplaceAll(oneLine.Replace(s), "##[", "%23#[")
	trimmed := strings.TrimLeftFunc(s, unicode.IsSpace)
	lead := s[:len(s)-len(trimmed)]
	if strings.HasPrefix(trimmed, "::") {
		return lead + "%3A" + trimmed[1:]
	}
	return s
}

// Command formats a workflow command (::name k=v,...::message) with the
// message and property values escaped; props are key, value pairs.
func Command(name, message string, props ...string) string {
	var b strings.Builder
	b.WriteString("::" + name)
	for i := 0; i+1 < len(props); i += 2 {
		if i == 0 {
			b.WriteByte(' ')
		} else {
			b.WriteByte(',')
		}
		b.WriteString(props[i] + "=" + EscapeProperty(props[i+1]))
	}
	b.WriteString("::" + EscapeData(message))
	return b.String()
}

// LineWriter passes foreign text to w one safe line at a time (see Line).
// A partial last line is held until Flush or the next newline. It is safe
// for concurrent use.
type LineWriter struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

// NewLineWriter returns a LineWriter writing to w.
func NewLineWriter(w io.Writer) *LineWriter { return &LineWriter{w: w} }

// maxLine bounds a line held for its newline: a longer one goes out in
// pieces of this length, so that text without newlines neither fills
// memory nor is scanned again with every write.
const maxLine = 64 << 10

func (l *LineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(p)
	emit := func(line []byte) error {
		_, err := io.WriteString(l.w, Line(strings.TrimSuffix(string(line), "\r"))+"\n")
		return err
	}
	for len(p) > 0 {
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			line := append(l.buf, p[:i]...)
			l.buf, p = l.buf[:0], p[i+1:]
			if err := emit(line); err != nil {
				return n, err
			}
			continue
		}
		l.buf, p = append(l.buf, p...), nil
		for len(l.buf) >= maxLine {
			if err := emit(l.buf[:maxLine]); err != nil {
				return n, err
			}
			l.buf = append(l.buf[:0], l.buf[maxLine:]...)
		}
	}
	return n, nil
}

// Flush writes a held partial line.
func (l *LineWriter) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) == 0 {
		return nil
	}
	line := string(l.buf)
	l.buf = nil
	_, err := io.WriteString(l.w, Line(line)+"\n")
	return err
}

// MarkdownText makes foreign text literal markdown on one line, fit for a
// heading or a table cell: line breaks escaped as in a plain log line, and every character markdown or a table gives a
// meaning to escaped with a backslash.
func MarkdownText(s string) string {
	var b strings.Builder
	for _, r := range oneLine.Replace(s) {
		if strings.ContainsRune(markdownSpecial, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

const markdownSpecial = "\\`*_[]<>|~#!&"

// MarkdownCode makes foreign text a code span on one line (outside
// tables, where '|' would end the cell): line breaks escaped as in a
// plain log line, fenced by more backticks than the text holds in a row.
func MarkdownCode(s string) string {
	s = oneLine.Replace(s)
	run, longest := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", longest+1)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " " // CommonMark strips one space each side
	}
	return fence + s + fence
}

// SetOutput appends name=value to the runner's output file (the path in
// GITHUB_OUTPUT), in the multi-line form with a random delimiter that the
// value does not contain.
func SetOutput(file, name, value string) error {
	if file == "" {
		return fmt.Errorf("GITHUB_OUTPUT is not set, so output %s cannot be set: run this as a step of a GitHub workflow", name)
	}
	delim, err := delimiter(value)
	if err != nil {
		return err
	}
	if err := appendFile(file, fmt.Sprintf("%s<<%s\n%s\n%s\n", name, delim, value, delim)); err != nil {
		return fmt.Errorf("set output %s: %w", name, err)
	}
	return nil
}

// AppendSummary appends markdown to the step summary file (the path in
// GITHUB_STEP_SUMMARY).
func AppendSummary(file, markdown string) error {
	if file == "" {
		return fmt.Errorf("GITHUB_STEP_SUMMARY is not set, so the step summary cannot be written: run this as a step of a GitHub workflow")
	}
	if err := appendFile(file, markdown+"\n"); err != nil {
		return fmt.Errorf("write the step summary: %w", err)
	}
	return nil
}

func appendFile(file, text string) error {
	f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// delimiter is a heredoc delimiter that occurs nowhere in value.
func delimiter(value string) (string, error) {
	for range 8 {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		d := "ghadelimiter_" + hex.EncodeToString(b)
		if !strings.Contains(value, d) {
			return d, nil
		}
	}
	return "", fmt.Errorf("no delimiter found for an output value")
}
