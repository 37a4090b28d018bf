package popularity

import (
	"bytes"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
)

func TestName(t *testing.T) {
	for path, want := range map[string]string{
		"/nix/store/0c0h0g0f0e0d0c0b0a09080706050403-openssl-3.0.13":  "openssl-3.0.13",
		"/nix/store/0c0h0g0f0e0d0c0b0a09080706050403-nss-cacert-3.98": "nss-cacert-3.98",
		"/nix/store/0c0h0g0f0e0d0c0b0a09080706050403-hello":           "hello",
		"nohash": "nohash",
	} {
		assert.Equal(t, Name(path), want, path)
	}
}

func TestLoad(t *testing.T) {
	d, err := Load(strings.NewReader(`{"glibc-2.39": 300000, "hello-2.12": 3}`))
	assert.NilError(t, err)
	assert.DeepEqual(t, d, Data{"glibc-2.39": 300000, "hello-2.12": 3})

	for _, bad := range []string{`[]`, `{"a": -1}`, `{"a": 1.5}`, `{"a": "x"}`, `not json`, ``} {
		_, err := Load(strings.NewReader(bad))
		assert.Assert(t, err != nil, "accepted %q", bad)
	}
}

func TestComputeAndWrite(t *testing.T) {
	const s = "/nix/store/"
	refs := map[string][]string{
		s + "aaa-hello-2.12":  {s + "bbb-glibc-2.39", s + "aaa-hello-2.12"},
		s + "ccc-curl-8.0":    {s + "bbb-glibc-2.39", s + "ddd-openssl-3", s + "ddd-openssl-3"},
		s + "ddd-openssl-3":   {s + "bbb-glibc-2.39"},
		s + "bbb-glibc-2.39":  nil,
		s + "eee-other-glibc": {s + "fff-glibc-2.39"}, // another build, same name
	}
	d := Compute(refs)
	assert.DeepEqual(t, d, Data{"glibc-2.39": 4, "openssl-3": 1})

	var a, b bytes.Buffer
	assert.NilError(t, Write(&a, d))
	assert.NilError(t, Write(&b, Compute(refs)))
	assert.Equal(t, a.String(), b.String())
	back, err := Load(&a)
	assert.NilError(t, err)
	assert.DeepEqual(t, back, d)
}
