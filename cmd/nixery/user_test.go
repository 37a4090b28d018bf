package main

import (
	"flag"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// --user root, 0 and their longer forms leave the image as it is: no
// User that names an account the image has no /etc/passwd for (podman
// refuses to start "root" without one).
func TestUserRootKeepsImage(t *testing.T) {
	for user, want := range map[string]string{"root": "", "root:root": "", "0": "", "0:0": "", "root:0:0": "", "app": "1000:1000", "1001:0": "1001:0"} {
		f := &buildFlags{platforms: listFlag{commas: true}, tags: listFlag{commas: true}}
		fs := flag.NewFlagSet("build", flag.ContinueOnError)
		f.register(fs)
		assert.NilError(t, fs.Parse([]string{"--nixpkgs", "path:/nonexistent", "--push=false", "--user", user}))
		j, err := f.check([]string{"hello"})
		assert.NilError(t, err, user)
		assert.Check(t, is.Equal(j.req.Image.User, want), user)
		assert.Check(t, (j.req.User == nil) == (want == ""), user)
	}
}
