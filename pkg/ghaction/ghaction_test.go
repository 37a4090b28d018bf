package ghaction

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestEscape(t *testing.T) {
	for _, tc := range []struct{ in, data, prop string }{
		{"plain", "plain", "plain"},
		{"100%", "100%25", "100%25"},
		{"a\r\nb", "a%0D%0Ab", "a%0D%0Ab"},
		{"k: v, w", "k: v, w", "k%3A v%2C w"},
		{"%0A", "%250A", "%250A"},
	} {
		assert.Equal(t, EscapeData(tc.in), tc.data, tc.in)
		assert.Equal(t, EscapeProperty(tc.in), tc.prop, tc.in)
	}
}

// No foreign text, however it is split, makes the runner see a command.
func TestLineNeverStartsACommand(t *testing.T) {
	hostile := []string{
		"::set-output name=digest::sha256:evil",
		"  ::warning title=INJECTED::pwned",
		"error\n::add-mask::x\n##[set-output name=a;]b",
		"\t##[error]fake",
		"ok\r::endgroup::",
		// The runner takes "##[" anywhere in a line, as Nix's prefixed
		// lines and an error's later lines have it.
		"[x86_64-linux] warning: foo ##[stop-commands]tok",
		"error: bad ##[set-output name=digest;]sha256:evil",
		"###[error]x",
	}
	for _, s := range hostile {
		out := Line(s)
		assert.Assert(t, !strings.ContainsAny(out, "\r\n"), "%q gave %q", s, out)
		assert.Assert(t, !isCommand(out), "%q gave %q", s, out)
	}
	assert.Equal(t, Line("::x::y"), "%3A:x::y")
	// The runner trims .NET's white space before it looks for "::".
	for _, blank := range []string{"\u00a0", "\u0085", "\u1680", "\u2003", "\u2028", "\u202f", "\u3000", " \u00a0\t"} {
		assert.Equal(t, Line(blank+"::add-mask::x"), blank+"%3A:add-mask::x", "%q", blank)
	}
	assert.Equal(t, Line("fine: text"), "fine: text")
}

// The runner does not unescape a plain line: Line escapes only what would
// break it, so a URL reads as Nix wrote it and the runner's masks (and
// the %2f forms nixery registers) match it.
func TestLineKeepsPercent(t *testing.T) {
	for in, want := range map[string]string{
		"unable to download 'http://h/x?access_token=QTokB%2fx2': 404": "unable to download 'http://h/x?access_token=QTokB%2fx2': 404",
		"100% done":             "100% done",
		"a%0Ab\r\nc":            "a%0Ab%0D%0Ac",
		"::x %25 ##[y]":         "%3A:x %25 %23#[y]",
		"\u00a0::add-mask::a%b": "\u00a0%3A:add-mask::a%b",
	} {
		assert.Check(t, is.Equal(Line(in), want), "%q", in)
	}
	var out bytes.Buffer
	w := NewLineWriter(&out)
	_, err := w.Write([]byte("get http://u:a%2fTok@h/ failed\nrest 50%"))
	assert.NilError(t, err)
	assert.NilError(t, w.Flush())
	assert.Equal(t, out.String(), "get http://u:a%2fTok@h/ failed\nrest 50%\n")
}

func isCommand(line string) bool {
	return strings.HasPrefix(strings.TrimLeftFunc(line, unicode.IsSpace), "::") || strings.Contains(line, "##[")
}

func TestLineWriter(t *testing.T) {
	var out bytes.Buffer
	w := NewLineWriter(&out)
	for _, chunk := range []string{"building\n::set-", "output name=a::b\r\n##[err", "or]x"} {
		_, err := w.Write([]byte(chunk))
		assert.NilError(t, err)
	}
	assert.NilError(t, w.Flush())
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	assert.DeepEqual(t, lines, []string{"building", "%3A:set-output name=a::b", "%23#[error]x"})
	for _, l := range lines {
		assert.Assert(t, !isCommand(l))
	}
}

func TestCommand(t *testing.T) {
	got := Command("error", "registry said:\n::set-output name=x::y", "title", "a: b, c")
	assert.Equal(t, got, "::error title=a%3A b%2C c::registry said:%0A::set-output name=x::y")
	assert.Assert(t, !strings.Contains(got, "\n"))
}

func TestFileCommands(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "output")
	assert.NilError(t, os.WriteFile(out, nil, 0o644))
	assert.NilError(t, SetOutput(out, "metadata", "line1\nline2"))
	text, err := os.ReadFile(out)
	assert.NilError(t, err)
	parts := strings.Split(string(text), "\n")
	assert.Assert(t, strings.HasPrefix(parts[0], "metadata<<ghadelimiter_"), string(text))
	assert.Equal(t, parts[3], strings.TrimPrefix(parts[0], "metadata<<"))

	// Missing or unwritable files are errors naming the variable, not panics.
	err = SetOutput("", "digest", "x")
	assert.Assert(t, is.ErrorContains(err, "GITHUB_OUTPUT is not set"))
	err = SetOutput(filepath.Join(dir, "missing", "file"), "digest", "x")
	assert.Assert(t, is.ErrorContains(err, "set output digest"))
	err = AppendSummary("", "# hi")
	assert.Assert(t, is.ErrorContains(err, "GITHUB_STEP_SUMMARY is not set"))
	err = AppendSummary(dir, "# hi") // a directory
	assert.Assert(t, is.ErrorContains(err, "write the step summary"))
}

// A value with line breaks and output syntax in it is one output, with
// exactly that value: it cannot end its own delimiter or forge another.
func TestSetOutputCannotForgeAnother(t *testing.T) {
	out := filepath.Join(t.TempDir(), "output")
	forged := "sha256:good\ndigest=evil\nimage<<EOF\nevil\nEOF\n"
	assert.NilError(t, SetOutput(out, "digest", forged))
	assert.NilError(t, SetOutput(out, "image", "x"))
	raw, err := os.ReadFile(out)
	assert.NilError(t, err)
	got := map[string]string{}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		name, delim, ok := strings.Cut(lines[i], "<<")
		assert.Assert(t, ok, "line %q is not name<<delimiter: %q", lines[i], raw)
		var value []string
		for i++; lines[i] != delim; i++ {
			value = append(value, lines[i])
		}
		got[name] = strings.Join(value, "\n")
	}
	assert.DeepEqual(t, got, map[string]string{"digest": forged, "image": "x"})
}

// Foreign text stays on its line and means nothing to markdown.
func TestMarkdown(t *testing.T) {
	for _, tc := range []struct{ in, text, code string }{
		{"ghcr.io/me/app", "ghcr.io/me/app", "`ghcr.io/me/app`"},
		{"oci:/x\n::set-output name=digest::evil", "oci:/x%0A::set-output name=digest::evil", "`oci:/x%0A::set-output name=digest::evil`"},
		{"a|b `c` *d* <e> 100%", "a\\|b \\`c\\` \\*d\\* \\<e\\> 100%", "``a|b `c` *d* <e> 100%``"},
		{"`x``", "\\`x\\`\\`", "``` `x`` ```"},
		{"# h\r\n", "\\# h%0D%0A", "`# h%0D%0A`"},
	} {
		assert.Equal(t, MarkdownText(tc.in), tc.text, tc.in)
		assert.Equal(t, MarkdownCode(tc.in), tc.code, tc.in)
	}
}

func TestCheckInput(t *testing.T) {
	assert.NilError(t, CheckInput("packages", strings.Repeat("x", MaxInputBytes)))
	assert.Error(t, CheckInput("packages", strings.Repeat("x", MaxInputBytes+1)),
		"input packages is 65537 bytes, more than the 64 KiB an input may hold (MaxInputBytes): shorten it")
}

// Text without newlines goes out in bounded pieces, each a safe line,
// rather than being held whole.
func TestLineWriterLongLine(t *testing.T) {
	var out bytes.Buffer
	w := NewLineWriter(&out)
	chunk := []byte(strings.Repeat("a", 1000) + "##[")
	for range 300 { // about 300 KB, no newline
		_, err := w.Write(chunk)
		assert.NilError(t, err)
	}
	assert.Check(t, len(w.buf) < maxLine, "held %d bytes", len(w.buf))
	assert.NilError(t, w.Flush())
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		assert.Check(t, len(l) <= maxLine+maxLine/2, "a line of %d bytes", len(l))
		assert.Check(t, !isCommand(l))
	}
}
