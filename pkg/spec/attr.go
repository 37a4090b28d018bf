package spec

import (
	"fmt"
	"strconv"
	"strings"
)

// AttrRule describes the grammar every package name must follow.
const AttrRule = "each dot-separated part must be a Nix identifier: a letter or _ followed by letters, digits, _, ' or -"

// maxAttrLen bounds a name; nixpkgs' longest attribute paths are far shorter.
const maxAttrLen = 256

// CheckAttr reports whether name is an attribute path of nixpkgs' grammar,
// such as hello or python3Packages.requests. Names are later handed to Nix
// as data, but checking them first turns typos and attempts to smuggle in
// Nix code into a clear error before Nix runs.
func CheckAttr(name string) error {
	if name == "" {
		return fmt.Errorf("empty package name")
	}
	if len(name) > maxAttrLen {
		return fmt.Errorf("package name %s is longer than %d bytes", quote(name), maxAttrLen)
	}
	for _, part := range strings.Split(name, ".") {
		if !isIdent(part) {
			return fmt.Errorf("invalid package name %s: %s", quote(name), AttrRule)
		}
	}
	return nil
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case i > 0 && (c >= '0' && c <= '9' || c == '\'' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// quote shows a name as the user typed it, between backquotes, unless it
// holds characters a terminal would not show faithfully.
func quote(s string) string {
	if strconv.CanBackquote(s) {
		return "`" + s + "`"
	}
	return strconv.Quote(s)
}
