package testenv

import "strings"

// NixHash is a valid nix-base32 store path hash made from n: distinct n,
// distinct hashes, for made-up store paths.
func NixHash(n int64) string {
	const digits = "0123456789abcdfghijklmnpqrsvwxyz"
	b := []byte(strings.Repeat("0", 32))
	for i := 31; n > 0; i-- {
		b[i] = digits[n%32]
		n /= 32
	}
	return string(b)
}
