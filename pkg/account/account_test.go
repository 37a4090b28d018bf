package account

import (
	"fmt"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]User{
		"app":           {Name: "app", UID: 1000, Group: "app", GID: 1000},
		"app:staff":     {Name: "app", UID: 1000, Group: "staff", GID: 1000},
		"1001":          {Name: "user", UID: 1001, Group: "user", GID: 1001},
		"1001:2002":     {Name: "user", UID: 1001, Group: "user", GID: 2002},
		"app:1001:2002": {Name: "app", UID: 1001, Group: "app", GID: 2002},
		"1000:0":        {Name: "user", UID: 1000, Group: "root", GID: 0},
		"svc.web_1-a":   {Name: "svc.web_1-a", UID: 1000, Group: "svc.web_1-a", GID: 1000},
	} {
		got, err := Parse(in)
		assert.NilError(t, err, in)
		assert.DeepEqual(t, *got, want)
	}
	for _, root := range []string{"", "0", "0:0", "root:0:0", "root", "root:root"} {
		got, err := Parse(root)
		assert.NilError(t, err, root)
		assert.Check(t, got == nil, "%q is root: the image stays as it is", root)
	}
}

// Nothing given to --user can add a line or a field to /etc/passwd.
func TestParseRefusesInjection(t *testing.T) {
	for in, want := range map[string]string{
		"app:x:0:0::/:/bin/sh":  "too many ':'",
		"app\nevil:x:0:0::/:":   "line break or control character",
		"app\r":                 "line break or control character",
		"a b":                   "not a portable user or group name",
		"-app":                  "not a portable user or group name",
		"app,x":                 "not a portable user or group name",
		"app/../x":              "not a portable user or group name",
		"ünï":                   "not a portable user or group name",
		"app:1000":              "mixes a name and a number",
		"app:x:1":               "needs numbers after the name",
		"99999999999":           "ids run from 0",
		"0:1000":                "uid 0 is root",
		"app:root":              "root is uid and gid 0",
		"root:staff":            "root is uid and gid 0",
		"root:5:5":              "root is uid and gid 0",
		"app:0:0":               "uid 0 is root, not app: leave --user out to run as root",
		".":                     "not a portable user or group name",
		"..:x":                  "not a portable user or group name",
		"app:..":                "not a portable user or group name",
		strings.Repeat("a", 33): "not a portable user or group name",
		"":                      "",
	} {
		if in == "" {
			continue
		}
		_, err := Parse(in)
		assert.ErrorContains(t, err, want, "%q", in)
		assert.Check(t, !strings.Contains(err.Error(), "\n"), "%q", err)
	}
}

func TestFiles(t *testing.T) {
	u, err := Parse("app:1001:1002")
	assert.NilError(t, err)
	assert.Equal(t, string(Passwd(u)), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1001:1002:app:/home/app:/bin/sh\n")
	assert.Equal(t, string(GroupFile(u)), "root:x:0:\nnobody:x:65534:\napp:x:1002:\n")
	assert.Equal(t, u.Config(), "1001:1002")
	assert.Equal(t, u.Home(), "/home/app")
	for _, line := range strings.Split(strings.TrimSpace(string(Passwd(u))), "\n") {
		assert.Check(t, is.Len(strings.Split(line, ":"), 7), line)
	}
}

// Without a user, root and nobody; a user taking nobody's name or id
// replaces nobody's entry rather than making a second one.
func TestFilesRootAndNobody(t *testing.T) {
	assert.Equal(t, string(Passwd(nil)), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
	assert.Equal(t, string(GroupFile(nil)), "root:x:0:\nnobody:x:65534:\n")
	for _, user := range []string{"nobody", "65534", "nobody:65534:65534", "65534:65534"} {
		u, err := Parse(user)
		assert.NilError(t, err, user)
		for file, data := range map[string][]byte{"passwd": Passwd(u), "group": GroupFile(u)} {
			names, ids := map[string]bool{}, map[string]bool{}
			for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
				f := strings.Split(line, ":")
				assert.Check(t, !names[f[0]], "%s: %s has %s twice:\n%s", user, file, f[0], data)
				assert.Check(t, !ids[f[2]], "%s: %s has id %s twice:\n%s", user, file, f[2], data)
				names[f[0]], ids[f[2]] = true, true
			}
			assert.Check(t, names[u.Name] || file == "group", "%s: %s", user, data)
		}
	}
	// Group nobody with another user: nobody's user stays, and the group
	// is nobody's own.
	u, err := Parse("app:nobody")
	assert.NilError(t, err)
	assert.Check(t, is.Contains(string(Passwd(u)), "nobody:x:65534:65534:nobody:/nonexistent:"))
	assert.Check(t, is.Contains(string(Passwd(u)), "app:x:1000:65534:"))
	assert.Equal(t, string(GroupFile(u)), "root:x:0:\nnobody:x:65534:\n")
}

// nobody, and the groups nobody and nogroup, by name keep the ids every
// system gives them; given with ids, the ids given.
func TestParseNobody(t *testing.T) {
	for in, want := range map[string]string{
		"nobody":           "nobody 65534 nobody 65534",
		"nobody:nobody":    "nobody 65534 nobody 65534",
		"nobody:nogroup":   "nobody 65534 nogroup 65534",
		"app:nogroup":      "app 1000 nogroup 65534",
		"nobody:staff":     "nobody 65534 staff 1000",
		"nobody:1234:1234": "nobody 1234 nobody 1234",
		"65534":            "user 65534 user 65534",
	} {
		u, err := Parse(in)
		assert.NilError(t, err, in)
		assert.Check(t, is.Equal(fmt.Sprintf("%s %d %s %d", u.Name, u.UID, u.Group, u.GID), want), in)
	}
}
