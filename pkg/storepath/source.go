package storepath

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// Source is the store path Nix copies a flake input's source tree to,
// given the tree's NAR hash as a flake lock spells it (sha256-<base64>):
// the fixed-output path named "source" that Nix itself computes to find
// an input it fetched before. ok is false for a hash of another form.
func Source(narHash string) (path string, ok bool) {
	b64, ok := strings.CutPrefix(narHash, "sha256-")
	if !ok {
		return "", false
	}
	sum, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(sum) != sha256.Size {
		return "", false
	}
	// Nix's makeStorePath("source", hash, "source"): the hash of this
	// fingerprint, folded to 160 bits, in nix-base32.
	fingerprint := "source:sha256:" + hex.EncodeToString(sum) + ":" + strings.TrimSuffix(Dir, "/") + ":source"
	full := sha256.Sum256([]byte(fingerprint))
	var folded [20]byte
	for i, b := range full {
		folded[i%len(folded)] ^= b
	}
	return Dir + base32(folded[:]) + "-source", true
}

// base32 writes b as Nix does: five bits at a time, starting from the
// last ones.
func base32(b []byte) string {
	n := (len(b)*8-1)/5 + 1
	out := make([]byte, 0, n)
	for i := n - 1; i >= 0; i-- {
		bit := i * 5
		j, k := bit/8, uint(bit%8)
		c := b[j] >> k
		if j+1 < len(b) {
			c |= b[j+1] << (8 - k)
		}
		out = append(out, nixBase32[c&0x1f])
	}
	return string(out)
}
