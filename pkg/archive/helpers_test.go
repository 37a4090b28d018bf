package archive

import (
	"crypto/sha256"
	"encoding/hex"
)

func sha256Of(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
