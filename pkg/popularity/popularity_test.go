package popularity

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"strings"
	"testing"

	"github.com/nixery-action/nixery-action/pkg/storepath"
	"gotest.tools/v3/assert"
)

func TestName(t *testing.T) {
	for path, want := range map[string]string{
		"/nix/store/0c0h0g0f0e0d0c0b0a09080706050403-openssl-3.0.13":  "openssl-3.0.13",
		"/nix/store/0c0h0g0f0e0d0c0b0a09080706050403-nss-cacert-3.98": "nss-cacert-3.98",
		"/nix/store/0c0h0g0f0e0d0c0b0a09080706050403-hello":           "hello",
		"/nix/store/0c0h0g0f0e0d0c0b0a09080706050403-hello/":          "hello",
		"0c0h0g0f0e0d0c0b0a09080706050403-python3-3.12.4-env":         "python3-3.12.4-env",
		"/nix/store/aaa-x":  "x",
		"/nix/store/nohash": "nohash",
		"/nix/store/-lead":  "-lead",
		"nohash":            "nohash",
		"":                  "",
	} {
		assert.Equal(t, storepath.Name(path), want, path)
	}
}

func TestLoad(t *testing.T) {
	d, err := Load(strings.NewReader(" {\"glibc-2.39\": 300000,\n \"hello-2.12\": 3, \"zero\": 0, \"\": 1}\n\n"))
	assert.NilError(t, err)
	assert.DeepEqual(t, d, Data{"glibc-2.39": 300000, "hello-2.12": 3, "zero": 0, "": 1})

	d, err = Load(strings.NewReader(`{}`))
	assert.NilError(t, err)
	assert.Assert(t, d != nil && len(d) == 0)
}

// Malformed popularity files are errors that say what is wrong.
func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct{ name, input, want string }{
		{"empty", ``, "the input is empty"},
		{"blank", " \n", "the input is empty"},
		{"not JSON", `not json`, "is not a JSON object"},
		{"list", `[["glibc", 1]]`, "it is a list"},
		{"null", `null`, "it is null"},
		{"number", `42`, "it is 42"},
		{"string", `"glibc"`, `it is "glibc" (a string)`},
		{"non-string key", `{1: 2}`, "is not a JSON object"},
		{"unterminated", `{"a": 1`, "is not a JSON object"},
		{"negative", `{"a": -1}`, `the count of "a" is negative (-1)`},
		{"fraction", `{"a": 1.5}`, `the count of "a", 1.5, is not a whole number`},
		{"exponent", `{"a": 1e3}`, `the count of "a", 1e3, is not a whole number`},
		{"too large", `{"a": 99999999999999999999}`, `the count of "a", 99999999999999999999, is too large`},
		{"quoted count", `{"a": "5"}`, `the count of "a" is "5" (a string), not a number`},
		{"null count", `{"a": null}`, `the count of "a" is null, not a number`},
		{"bool count", `{"a": true}`, `the count of "a" is true, not a number`},
		{"object count", `{"a": {"n": 1}}`, `the count of "a" is an object, not a number`},
		{"list count", `{"a": [1]}`, `the count of "a" is a list, not a number`},
		{"duplicate", `{"a": 1, "b": 2, "a": 3}`, `"a" is given twice`},
		{"trailing data", `{"a": 1} x`, "unexpected data after the JSON object"},
		{"two objects", `{"a": 1} {"b": 2}`, "unexpected data after the JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Load(strings.NewReader(tc.input))
			assert.ErrorContains(t, err, tc.want)
			assert.Assert(t, d == nil)
			assert.Assert(t, strings.HasPrefix(err.Error(), "popularity data"), err.Error())
			assert.Assert(t, !strings.Contains(err.Error(), "\n"), "error on more than one line: %q", err)
		})
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestLoadReadError(t *testing.T) {
	_, err := Load(failingReader{})
	assert.ErrorContains(t, err, "disk on fire")
}

func TestCompute(t *testing.T) {
	const s = "/nix/store/"
	closure := map[string][]string{
		s + "aaa-hello-2.12": {s + "bbb-glibc-2.39", s + "aaa-hello-2.12"}, // self reference: not counted
		s + "ccc-curl-8.0":   {s + "bbb-glibc-2.39", s + "ddd-openssl-3", s + "ddd-openssl-3"},
		s + "ddd-openssl-3":  {s + "bbb-glibc-2.39"},
		s + "bbb-glibc-2.39": nil,
		// Another build of glibc, same name: a path referencing both
		// counts once for the name.
		s + "eee-both-glibcs": {s + "fff-glibc-2.39", s + "bbb-glibc-2.39"},
		s + "fff-glibc-2.39":  {},
	}
	assert.DeepEqual(t, Compute(closure), Data{"glibc-2.39": 4, "openssl-3": 1})

	// Several closures: paths they share count once; a path's references
	// are the union of what the closures list for it.
	other := map[string][]string{
		s + "ccc-curl-8.0":     {s + "bbb-glibc-2.39", s + "ddd-openssl-3"},
		s + "ggg-wget-1.21":    {s + "ddd-openssl-3", s + "bbb-glibc-2.39"},
		s + "aaa-hello-2.12":   {s + "hhh-gettext-0.22"},
		s + "hhh-gettext-0.22": nil,
	}
	assert.DeepEqual(t, Compute(closure, other), Data{"glibc-2.39": 5, "openssl-3": 2, "gettext-0.22": 1})
	assert.DeepEqual(t, Compute(other, closure), Compute(closure, other))
	assert.DeepEqual(t, Compute(closure, closure), Compute(closure))
	assert.DeepEqual(t, Compute(), Data{})
	assert.DeepEqual(t, Compute(nil), Data{})
}

// Compute agrees with counting straight from the definition on random
// closures.
func TestComputeRandom(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var paths []string
	for i := 0; i < 300; i++ {
		paths = append(paths, fmt.Sprintf("/nix/store/%032d-pkg%d", i, rng.Intn(60)))
	}
	var closures []map[string][]string
	for c := 0; c < 4; c++ {
		m := map[string][]string{}
		for k := 0; k < 100; k++ {
			from := paths[rng.Intn(len(paths))]
			for r := rng.Intn(8); r > 0; r-- {
				m[from] = append(m[from], paths[rng.Intn(len(paths))])
			}
		}
		closures = append(closures, m)
	}
	want := Data{}
	for _, name := range namesOf(paths) {
		referrers := map[string]bool{}
		for _, m := range closures {
			for from, tos := range m {
				for _, to := range tos {
					if to != from && storepath.Name(to) == name {
						referrers[from] = true
					}
				}
			}
		}
		if len(referrers) > 0 {
			want[name] = len(referrers)
		}
	}
	assert.DeepEqual(t, Compute(closures...), want)
}

func namesOf(paths []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range paths {
		if !seen[storepath.Name(p)] {
			seen[storepath.Name(p)] = true
			out = append(out, storepath.Name(p))
		}
	}
	return out
}

func TestWrite(t *testing.T) {
	d := Data{"zlib-1.3": 7, "glibc-2.39": 300000, "a<b": 1, "": 0}
	var buf bytes.Buffer
	assert.NilError(t, Write(&buf, d))
	assert.Equal(t, buf.String(), "{\n  \"\": 0,\n  \"a\\u003cb\": 1,\n  \"glibc-2.39\": 300000,\n  \"zlib-1.3\": 7\n}\n")
	back, err := Load(&buf)
	assert.NilError(t, err)
	assert.DeepEqual(t, back, d)

	// The same data, built in another order, gives the same bytes.
	big := Data{}
	for i := 0; i < 1000; i++ {
		big[fmt.Sprintf("pkg-%d", i)] = i
	}
	var first string
	for run := 0; run < 5; run++ {
		copied := Data{}
		for k, v := range big {
			copied[k] = v
		}
		var b bytes.Buffer
		assert.NilError(t, Write(&b, copied))
		if run == 0 {
			first = b.String()
		}
		assert.Equal(t, b.String(), first)
	}

	for _, empty := range []Data{nil, {}} {
		var b bytes.Buffer
		assert.NilError(t, Write(&b, empty))
		assert.Equal(t, b.String(), "{}\n")
		back, err := Load(&b)
		assert.NilError(t, err)
		assert.Equal(t, len(back), 0)
	}

	err = Write(&buf, Data{"ok": 1, "b": -2, "a": -1})
	assert.ErrorContains(t, err, `the count of "a" is negative (-1)`)
}

// endlessReader repeats its text forever.
type endlessReader struct {
	text string
	off  int
}

func (e *endlessReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = e.text[e.off%len(e.text)]
		e.off++
	}
	return len(p), nil
}

// Data past MaxBytes is one error saying so, whether it is one endless
// name, an endless count or endless blanks after the object; a file just
// of all nixpkgs' names loads.
func TestLoadBound(t *testing.T) {
	for name, r := range map[string]io.Reader{
		"endless name":   io.MultiReader(strings.NewReader(`{"`), &endlessReader{text: "a"}),
		"endless count":  io.MultiReader(strings.NewReader(`{"a": 1`), &endlessReader{text: "1"}),
		"endless blanks": io.MultiReader(strings.NewReader(`{"a": 1}`), &endlessReader{text: " "}),
	} {
		_, err := Load(r)
		assert.Error(t, err, "popularity data: larger than 64 MiB, the bound on popularity data (MaxBytes; all of nixpkgs' is about 4 MiB): give the output of nixery popcount", name)
	}
	// All of nixpkgs: some 100,000 names.
	data := Data{}
	for i := range 100_000 {
		data[fmt.Sprintf("python3.12-package%d-1.2.3", i)] = i
	}
	var b bytes.Buffer
	assert.NilError(t, Write(&b, data))
	assert.Assert(t, b.Len() < MaxBytes/8, "%d bytes", b.Len())
	got, err := Load(&b)
	assert.NilError(t, err)
	assert.Equal(t, len(got), 100_000)
}
