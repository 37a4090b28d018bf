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
