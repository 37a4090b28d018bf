package spec

import (
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestParsePlatform(t *testing.T) {
	cases := []struct {
		in                string
		os, arch, variant string
		system, docker    string
	}{
		{"linux/amd64", "linux", "amd64", "", "x86_64-linux", "linux/amd64"},
		{"linux/arm64", "linux", "arm64", "v8", "aarch64-linux", "linux/arm64"},
		{"linux/arm64/v8", "linux", "arm64", "v8", "aarch64-linux", "linux/arm64"},
		{"linux/arm/v7", "linux", "arm", "v7", "armv7l-linux", "linux/arm/v7"},
		{"linux/arm", "linux", "arm", "v7", "armv7l-linux", "linux/arm/v7"},
		{"linux/386", "linux", "386", "", "i686-linux", "linux/386"},
		{"linux/riscv64", "linux", "riscv64", "", "riscv64-linux", "linux/riscv64"},
		{"linux/ppc64le", "linux", "ppc64le", "", "powerpc64le-linux", "linux/ppc64le"},
		{"linux/s390x", "linux", "s390x", "", "s390x-linux", "linux/s390x"},
		{"aarch64-linux", "linux", "arm64", "v8", "aarch64-linux", "linux/arm64"},
		{" Linux/AMD64 ", "linux", "amd64", "", "x86_64-linux", "linux/amd64"},
		{"linux/x86_64", "linux", "amd64", "", "x86_64-linux", "linux/amd64"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			p, err := ParsePlatform(tc.in)
			assert.NilError(t, err)
			assert.DeepEqual(t, p, Platform{OS: tc.os, Architecture: tc.arch, Variant: tc.variant, System: tc.system})
			assert.Equal(t, p.String(), tc.docker)
			// Every platform's own name and system read back to it.
			for _, name := range []string{p.String(), p.System} {
				q, err := ParsePlatform(name)
				assert.NilError(t, err)
				assert.Equal(t, q, p)
			}
		})
	}
}

func TestParsePlatformErrors(t *testing.T) {
	for _, in := range []string{"linux/sparc64", "windows/amd64", "darwin/arm64", "x86_64-darwin", "linux/arm/v6", "amd64", ""} {
		_, err := ParsePlatform(in)
		assert.Assert(t, err != nil, in)
		// The error names the input and lists what is supported.
		assert.Assert(t, is.Contains(err.Error(), "`"+in+"`"))
		for _, p := range SupportedPlatforms() {
			assert.Assert(t, is.Contains(err.Error(), p.String()))
		}
	}
}

func TestParsePlatforms(t *testing.T) {
	got, err := ParsePlatforms("linux/s390x, linux/arm64 linux/amd64", "linux/arm64/v8,aarch64-linux\nlinux/386")
	assert.NilError(t, err)
	var names []string
	for _, p := range got {
		names = append(names, p.String())
	}
	assert.DeepEqual(t, names, []string{"linux/amd64", "linux/arm64", "linux/386", "linux/s390x"})

	none, err := ParsePlatforms("", " , ")
	assert.NilError(t, err)
	assert.Assert(t, none == nil)

	_, err = ParsePlatforms("linux/amd64,linux/sparc64")
	assert.ErrorContains(t, err, "linux/sparc64")
}

func TestSelectPlatforms(t *testing.T) {
	amd64 := DefaultPlatform
	cases := []struct {
		name      string
		args      string
		requested []Platform
		want      []Platform
	}{
		{"default", "hello", nil, []Platform{amd64}},
		{"arm64 meta-package alone", "arm64/hello", nil, []Platform{Arm64}},
		{"requested", "hello", []Platform{Arm64, amd64}, []Platform{amd64, Arm64}},
		{"merged", "arm64/hello", []Platform{amd64}, []Platform{amd64, Arm64}},
		{"merged without duplicates", "arm64/hello", []Platform{Arm64}, []Platform{Arm64}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse([]string{tc.args}, Options{})
			assert.NilError(t, err)
			assert.DeepEqual(t, s.SelectPlatforms(tc.requested), tc.want)
		})
	}
}
