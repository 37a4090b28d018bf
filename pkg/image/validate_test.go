package image

import (
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"fine", Options{Entrypoint: []string{"/bin/sh", ""}, WorkingDir: "/work dir", User: "1000:1000", Labels: map[string]string{"org.example.a": "x\ny"}}, ""},
		{"null entrypoint", Options{Entrypoint: []string{""}}, "entrypoint's first word (the program) is empty or null"},
		{"null cmd", Options{Cmd: []string{"", "x"}}, "command's first word"},
		{"workdir newline", Options{WorkingDir: "/a\n/b"}, `working directory "/a\n/b" holds a line break`},
		{"user newline", Options{User: "root\nUSER evil"}, "user \"root\\nUSER evil\" holds a line break"},
		{"empty label key", Options{Labels: map[string]string{"": "x"}}, `label key "" is not valid`},
		{"label key with blank", Options{Labels: map[string]string{"a b": "x"}}, `label key "a b" is not valid`},
		{"label key with newline", Options{Labels: map[string]string{"a\nb": "x"}}, `label key "a\nb" is not valid`},
		{"fine keys and values", Options{Env: []string{"MY_VAR=a=b c", "lower.case-ok=", "PATH=/x"}, Labels: map[string]string{"org.example/team:x": "é\tü"}}, ""},
		{"relative workdir", Options{WorkingDir: "relative/dir"}, `working directory "relative/dir" is not an absolute path`},
		{"workdir escaping", Options{WorkingDir: "../../etc"}, `working directory "../../etc" is not an absolute path`},
		{"workdir with ..", Options{WorkingDir: "/work/../etc"}, `working directory "/work/../etc" is not a clean path (no "." or ".." parts, doubled or trailing '/'): give /etc`},
		{"workdir trailing slash", Options{WorkingDir: "/work/"}, "give /work"},
		{"workdir NUL", Options{WorkingDir: "/wo\x00rk"}, "holds a NUL byte"},
		{"env key with blank", Options{Env: []string{"A B=1"}}, `environment variable key "A B" is not valid: a key is printable ASCII`},
		{"env key with control", Options{Env: []string{"A\x1bB=1"}}, `environment variable key "A\x1bB" is not valid`},
		{"env key not ASCII", Options{Env: []string{"Ä=1"}}, `environment variable key "Ä" is not valid`},
		{"env no value", Options{Env: []string{"A"}}, `environment entry "A" is not KEY=VALUE`},
		{"env empty key", Options{Env: []string{"=x"}}, `environment entry "=x" is not KEY=VALUE`},
		{"env value NUL", Options{Env: []string{"A=x\x00y"}}, `environment variable A's value "x\x00y" holds a NUL byte`},
		{"env value not UTF-8", Options{Env: []string{"A=\xff"}}, `environment variable A's value "\xff" is not UTF-8 text`},
		{"label value not UTF-8", Options{Labels: map[string]string{"a": "caf\xe9"}}, `label a's value "caf\xe9" is not UTF-8 text`},
		{"label value NUL", Options{Labels: map[string]string{"a": "x\x00"}}, "holds a NUL byte"},
		{"label key with '='", Options{Labels: map[string]string{"a=b": "x"}}, `label key "a=b" is not valid`},
		{"cmd NUL", Options{Cmd: []string{"a\x00b"}}, `command word "a\x00b" holds a NUL byte`},
		{"entrypoint NUL", Options{Entrypoint: []string{"/bin/sh", "-c", "x\x00"}}, `entrypoint word "x\x00" holds a NUL byte`},
		{"entrypoint not UTF-8", Options{Entrypoint: []string{"/bin/\xfe"}}, "is not UTF-8 text"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			if tc.want == "" {
				assert.NilError(t, err)
				return
			}
			assert.ErrorContains(t, err, tc.want)
			assert.Assert(t, !strings.Contains(err.Error(), "\n"))
			// NewImage refuses the same.
			_, err = configFile(amd64, nil, tc.o)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

func TestParseSourceDateEpoch(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64 // -1: error
	}{
		{"", 0}, {"5", 5}, {" 5", 5}, {"5\n", 5}, {"1700000000", 1700000000},
		{"-1", -1}, {"5s", -1}, {"0x10", -1}, {"253402300800", -1}, {"1e3", -1},
	} {
		got, err := ParseSourceDateEpoch(tc.in)
		if tc.want < 0 {
			assert.ErrorContains(t, err, "is not a whole number of seconds", tc.in)
			continue
		}
		assert.NilError(t, err, tc.in)
		if tc.in == "" {
			assert.Assert(t, got.IsZero())
			continue
		}
		assert.Equal(t, got, time.Unix(tc.want, 0).UTC(), tc.in)
	}
}

// Annotations follow the same key rule and take the same values as labels.
func TestCheckKeyValues(t *testing.T) {
	assert.NilError(t, CheckKeyValues("annotation", map[string]string{"org.opencontainers.image.source": "https://x", "a_b-c.d/e:f": "ü\n"}))
	for _, tc := range []struct {
		m    map[string]string
		want string
	}{
		{map[string]string{"a b": "x"}, `annotation key "a b" is not valid`},
		{map[string]string{"a\x7f": "x"}, `annotation key "a\x7f" is not valid`},
		{map[string]string{"": "x"}, `annotation key "" is not valid`},
		{map[string]string{"a": "x\x00"}, `annotation a's value "x\x00" holds a NUL byte`},
		{map[string]string{"a": "\xc3\x28"}, `annotation a's value "\xc3(" is not UTF-8 text`},
		{map[string]string{"b": "\xff", "a": "x"}, `annotation b's value`},
	} {
		err := CheckKeyValues("annotation", tc.m)
		assert.ErrorContains(t, err, tc.want)
		assert.Assert(t, !strings.Contains(err.Error(), "\n"))
	}
}
