package sbom

import (
	"testing"

	"gotest.tools/v3/assert"
)

func TestNarHashHex(t *testing.T) {
	// The three forms of one hash, as `nix hash to-base32/to-base16` print it.
	const want = "07e6daee00167e99c5312ce9291e8d12780a822d60e0d049b2f58b5b4430e30f"
	for _, h := range []string{
		"sha256-B+ba7gAWfpnFMSzpKR6NEngKgi1g4NBJsvWLW0Qw4w8=",
		"sha256:03z36125p2zmn94x1q305n10ly0jilg2ks9c672rjzhn03pdmrh7",
		"sha256:" + want,
	} {
		got, err := narHashHex(h)
		assert.NilError(t, err, h)
		assert.Equal(t, got, want, h)
	}
	for _, bad := range []string{"", "sha256-x", "md5-B+ba7gAWfpnFMSzpKR6NEngKgi1g4NBJsvWLW0Qw4w8=", "sha256:03z36125p2zmn94x1q305n10ly0jilg2ks9c672rjzhn03pdmrhe", "sha256:zz"} {
		_, err := narHashHex(bad)
		assert.ErrorContains(t, err, "is not a SHA-256 hash", bad)
	}
}
