package suggest

import (
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestClosest(t *testing.T) {
	names := []string{"hello", "help", "shell", "bashInteractive", "coreutils", "python3Packages", "jello", "hellox"}
	cases := []struct {
		word string
		want []string
	}{
		{"helo", []string{"hello", "help"}},
		{"Hello", []string{"hello", "hellox", "jello"}},
		{"coreutil", []string{"coreutils"}},
		{"bashinteractiv", []string{"bashInteractive"}},
		{"pyhton3Packages", []string{"python3Packages"}},
		{"git", nil},
		{"hello", []string{"hellox", "jello", "help"}}, // the word itself is no suggestion
	}
	for _, tc := range cases {
		assert.Check(t, is.DeepEqual(Closest(tc.word, names, 3), tc.want), tc.word)
	}
	assert.Check(t, is.Len(Closest("helo", names, 1), 1))
}

func TestHint(t *testing.T) {
	assert.Equal(t, Hint(nil), "")
	assert.Equal(t, Hint([]string{"hello"}), " (did you mean hello?)")
	assert.Equal(t, Hint([]string{"a", "b", "c"}), " (did you mean a, b or c?)")
}
