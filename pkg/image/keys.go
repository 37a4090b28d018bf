package image

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// KeyRule says, for --help and errors, what CheckKey accepts.
const KeyRule = "printable ASCII (letters, digits, punctuation) without blanks or '=', e.g. MY_VAR or org.example.team"

// CheckKey is the one rule for the keys of environment variables, labels
// and annotations (what names them: "environment variable", "label",
// "annotation"): at least one printable ASCII character, none of them a
// blank or '='. Such a key reads the same in a shell, a runtime and a
// registry's web page.
func CheckKey(what, key string) error {
	ok := key != "" && strings.IndexFunc(key, func(r rune) bool { return r <= ' ' || r > '~' || r == '=' }) < 0
	if !ok {
		return fmt.Errorf("%s key %q is not valid: a key is %s", what, key, KeyRule)
	}
	return nil
}

// CheckText refuses what a config cannot carry as given: bytes that are
// not UTF-8 (JSON would silently replace them) and NUL (no runtime can
// pass it to a program). what names the text for the error.
func CheckText(what, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s %q is not UTF-8 text: give it in UTF-8", what, s)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%s %q holds a NUL byte, which no program can be given: remove it", what, s)
	}
	return nil
}

// CheckKeyValues checks a map of labels or annotations (what: "label",
// "annotation"), in key order so that the error is always the same one.
func CheckKeyValues(what string, m map[string]string) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := CheckKey(what, k); err != nil {
			return err
		}
		if err := CheckText(what+" "+k+"'s value", m[k]); err != nil {
			return err
		}
	}
	return nil
}
