package sbom

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// narHashHex returns the hex digits of a SHA-256 narHash in any of the
// forms Nix prints: SRI (sha256-<base64>, Nix 2.4 and later), sha256:<nix
// base32> (older) or sha256:<hex>.
func narHashHex(h string) (string, error) {
	var raw []byte
	var err error
	switch {
	case strings.HasPrefix(h, "sha256-"):
		raw, err = base64.StdEncoding.DecodeString(h[len("sha256-"):])
	case strings.HasPrefix(h, "sha256:") && len(h) == len("sha256:")+64:
		raw, err = hex.DecodeString(h[len("sha256:"):])
	case strings.HasPrefix(h, "sha256:"):
		raw, err = nixBase32Decode(h[len("sha256:"):])
	default:
		return "", fmt.Errorf("narHash %q is not a SHA-256 hash", h)
	}
	if err != nil || len(raw) != 32 {
		return "", fmt.Errorf("narHash %q is not a SHA-256 hash", h)
	}
	return hex.EncodeToString(raw), nil
}

// nixBase32Alphabet is Nix's base-32 alphabet (no e, o, u, t).
const nixBase32Alphabet = "0123456789abcdfghijklmnpqrsvwxyz"

// nixBase32Decode decodes Nix's base 32, which writes the hash's bits
// from the last character to the first.
func nixBase32Decode(s string) ([]byte, error) {
	out := make([]byte, len(s)*5/8)
	for n := 0; n < len(s); n++ {
		c := s[len(s)-n-1]
		digit := strings.IndexByte(nixBase32Alphabet, c)
		if digit < 0 {
			return nil, fmt.Errorf("invalid base-32 character %q", c)
		}
		b := n * 5
		i, j := b/8, b%8
		out[i] |= byte(digit << j)
		if i+1 < len(out) {
			out[i+1] |= byte(digit >> (8 - j))
		} else if digit>>(8-j) != 0 {
			return nil, fmt.Errorf("invalid base-32 hash")
		}
	}
	return out, nil
}
