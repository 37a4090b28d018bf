package main

import (
	"bytes"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
)

// An input longer than ghaction.MaxInputBytes is one error naming it,
// whether the action reads it itself (packages) or as a flag (tags).
func TestActionInputTooLong(t *testing.T) {
	long := strings.Repeat("a", 64<<10+1)
	for name, env := range map[string]map[string]string{
		"packages": {"INPUT_PACKAGES": long},
		"tags":     {"INPUT_PACKAGES": "hello", "INPUT_TAGS": long},
	} {
		var stdout bytes.Buffer
		err := runAction(envOf(env), &stdout)
		want := "input " + name + " is 65537 bytes, more than the 64 KiB an input may hold (MaxInputBytes): shorten it"
		assert.Error(t, err, want)
		assert.Equal(t, stdout.String(), "::error title=nixery::"+want+"\n")
	}
}
