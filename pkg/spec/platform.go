package spec

import (
	"fmt"
	"strings"
	"unicode"
)

// Platform is an image platform and the Nix system that builds for it.
type Platform struct {
	OS           string // OCI os, e.g. linux
	Architecture string // OCI architecture, e.g. arm64
	Variant      string // OCI variant, e.g. v8; empty when the architecture has none
	System       string // Nix system, e.g. aarch64-linux
}

// String returns the platform's name as Docker writes it: linux/arm64,
// linux/arm/v7. The arm64 variant is implied, as in Docker.
func (p Platform) String() string {
	if p.Variant == "" || p.Architecture == "arm64" {
		return p.OS + "/" + p.Architecture
	}
	return p.OS + "/" + p.Architecture + "/" + p.Variant
}

// supported lists the platforms in canonical order: images, indexes and
// reports always list platforms in this order, whatever order they were
// asked for in.
var supported = []Platform{
	{"linux", "amd64", "", "x86_64-linux"},
	{"linux", "arm64", "v8", "aarch64-linux"},
	{"linux", "arm", "v7", "armv7l-linux"},
	{"linux", "386", "", "i686-linux"},
	{"linux", "riscv64", "", "riscv64-linux"},
	{"linux", "ppc64le", "", "powerpc64le-linux"},
	{"linux", "s390x", "", "s390x-linux"},
}

// DefaultPlatform is built when nothing else is asked for.
var DefaultPlatform = supported[0]

// Arm64 is the platform the arm64 meta-package selects.
var Arm64 = supported[1]

// aliases maps other common spellings to a supported platform's name.
var aliases = map[string]string{
	"linux/arm64/v8":    "linux/arm64",
	"linux/aarch64":     "linux/arm64",
	"linux/arm":         "linux/arm/v7",
	"linux/armhf":       "linux/arm/v7",
	"linux/x86_64":      "linux/amd64",
	"linux/x86-64":      "linux/amd64",
	"linux/i386":        "linux/386",
	"linux/i686":        "linux/386",
	"linux/powerpc64le": "linux/ppc64le",
}

// SupportedPlatforms returns every platform that can be built, in
// canonical order.
func SupportedPlatforms() []Platform {
	return append([]Platform(nil), supported...)
}

// ParsePlatform reads one platform: Docker's os/arch[/variant]
// (linux/amd64, linux/arm64, linux/arm/v7, ...) or a Nix system
// (aarch64-linux).
func ParsePlatform(s string) (Platform, error) {
	name := strings.ToLower(strings.TrimSpace(s))
	if a, ok := aliases[name]; ok {
		name = a
	}
	for _, p := range supported {
		if name == p.String() || name == p.System {
			return p, nil
		}
	}
	names := make([]string, len(supported))
	for i, p := range supported {
		names[i] = p.String()
	}
	return Platform{}, fmt.Errorf("unsupported platform %s: use one of %s (or their Nix systems, e.g. aarch64-linux)",
		quote(s), strings.Join(names, ", "))
}

// ParsePlatforms reads platforms separated by commas or spaces, in one or
// more strings, and returns them de-duplicated in canonical order. No
// platforms at all gives nil, so that callers can tell "not given" apart.
func ParsePlatforms(lists ...string) ([]Platform, error) {
	var out []Platform
	for _, list := range lists {
		for _, f := range Words(list) {
			p, err := ParsePlatform(f)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
	}
	return MergePlatforms(out), nil
}

// MergePlatforms returns the union of the lists in canonical order.
func MergePlatforms(lists ...[]Platform) []Platform {
	want := map[string]bool{}
	for _, l := range lists {
		for _, p := range l {
			want[p.System] = true
		}
	}
	var out []Platform
	for _, p := range supported {
		if want[p.System] {
			out = append(out, p)
		}
	}
	return out
}

func isListSep(r rune) bool {
	return r == ',' || unicode.IsSpace(r)
}

// Words splits a list as packages and platforms are given: separated by
// commas, spaces or newlines.
func Words(list string) []string { return strings.FieldsFunc(list, isListSep) }
