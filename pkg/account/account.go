// Package account reads the user an image runs as (--user) and writes the
// /etc/passwd and /etc/group of every image: root and nobody, and the
// user, named, with a group and a home directory, so that whoami answers
// and programs that look themselves up find an entry. Names are POSIX
// portable user names only, so nothing a user passes can add a line or a
// field to those files.
package account

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Defaults for what --user leaves out.
const (
	// DefaultID is the uid and gid of a user given by name alone: the
	// first regular user of most distributions.
	DefaultID = 1000
	// DefaultName is the name of a user given by number alone.
	DefaultName = "user"
)

// User is a non-root user of an image, and its primary group.
type User struct {
	Name  string
	UID   int
	Group string
	GID   int
}

// Home is the user's home directory in the image.
func (u User) Home() string { return "/home/" + u.Name }

// Config is the image config's User: numeric, as Kubernetes' runAsNonRoot
// needs to tell that it is not root.
func (u User) Config() string { return fmt.Sprintf("%d:%d", u.UID, u.GID) }

// nameRE is the POSIX portable user name, without a leading '-', at most
// 32 characters (useradd's limit).
var nameRE = regexp.MustCompile(`^[A-Za-z0-9._][A-Za-z0-9._-]{0,31}$`)

// maxID is the largest uid or gid accepted (below 2^31, and not the
// (uid_t)-1 that means "no change").
const maxID = 1<<31 - 2

// usage is what --user takes, for error messages.
const usage = "give NAME, NAME:GROUP, UID, UID:GID or NAME:UID:GID (names are letters, digits, '.', '_' and '-')"

// Parse reads --user: NAME, NAME:GROUP, UID, UID:GID or NAME:UID:GID. A
// name alone gets DefaultID as uid and gid, except nobody (and the groups
// nobody and nogroup), which get NobodyID, as everywhere; a uid alone is
// DefaultName with its uid as gid. It returns nil for root ("", root, 0, 0:0, root:root):
// the image then stays as it is without --user.
func Parse(s string) (*User, error) {
	if s == "" {
		return nil, nil
	}
	bad := func(why string) (*User, error) {
		return nil, fmt.Errorf("--user %q: %s; %s", s, why, usage)
	}
	if strings.IndexFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0 {
		return bad("it holds a line break or control character")
	}
	parts := strings.Split(s, ":")
	var u User
	named := false // names only, no ids: root and root:root are root
	switch len(parts) {
	case 1:
		if id, ok := number(parts[0]); ok {
			u = User{Name: DefaultName, UID: id, Group: DefaultName, GID: id}
		} else {
			u = User{Name: parts[0], UID: DefaultID, Group: parts[0], GID: DefaultID}
			named = true
		}
	case 2:
		uid, uidNum := number(parts[0])
		gid, gidNum := number(parts[1])
		switch {
		case uidNum && gidNum:
			u = User{Name: DefaultName, UID: uid, Group: DefaultName, GID: gid}
		case !uidNum && !gidNum:
			u = User{Name: parts[0], UID: DefaultID, Group: parts[1], GID: DefaultID}
			named = true
		default:
			return bad("mixes a name and a number")
		}
	case 3:
		uid, ok1 := number(parts[1])
		gid, ok2 := number(parts[2])
		if !ok1 || !ok2 {
			return bad("NAME:UID:GID needs numbers after the name")
		}
		u = User{Name: parts[0], UID: uid, Group: parts[0], GID: gid}
	default:
		return bad("too many ':'")
	}
	for _, n := range []string{u.Name, u.Group} {
		if !nameRE.MatchString(n) || n == "." || n == ".." {
			return bad(fmt.Sprintf("%q is not a portable user or group name", n))
		}
	}
	if u.UID < 0 || u.GID < 0 {
		return bad(fmt.Sprintf("ids run from 0 to %d", maxID))
	}
	if named {
		// nobody and its group keep the ids every system gives them.
		if u.Name == "nobody" {
			u.UID = NobodyID
		}
		if u.Group == "nobody" || u.Group == "nogroup" {
			u.GID = NobodyID
		}
	}
	switch {
	case named && u.Name == "root" && u.Group == "root":
		return nil, nil // root: the image as it is
	case u.UID == 0 && u.GID == 0 && u.Name != "root" && u.Name != DefaultName:
		return bad(fmt.Sprintf("uid 0 is root, not %s: leave --user out to run as root, or give %s another uid", u.Name, u.Name))
	case u.UID == 0 && u.GID == 0:
		return nil, nil // root: the image as it is
	case u.UID == 0:
		return bad("uid 0 is root, whose group is 0")
	case u.Name == "root" || (u.Group == "root" && u.GID != 0):
		return bad("root is uid and gid 0: pick another name")
	case u.GID == 0:
		u.Group = "root" // the user is in root's group (as OpenShift runs images)
	}
	return &u, nil
}

// number reads a decimal id in range.
func number(s string) (int, bool) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > maxID {
		return -1, true // a number, but out of range
	}
	return n, true
}

// RootHome is root's home directory, as /etc/passwd names it.
const RootHome = "/root"

// Nobody's uid and gid: the unprivileged account most systems have, which
// programs drop privileges to.
const NobodyID = 65534

// Passwd is /etc/passwd: root, nobody and u (nil: no user). Without these
// entries root has no name, so `id -un`, whoami, ssh and programs that
// look up their user fail even as root. nobody stays out where u takes
// its name or its uid.
func Passwd(u *User) []byte {
	s := "root:x:0:0:root:" + RootHome + ":/bin/sh\n"
	if u == nil || (u.Name != "nobody" && u.UID != NobodyID) {
		s += fmt.Sprintf("nobody:x:%d:%d:nobody:/nonexistent:/bin/false\n", NobodyID, NobodyID)
	}
	if u != nil {
		s += fmt.Sprintf("%s:x:%d:%d:%s:%s:/bin/sh\n", u.Name, u.UID, u.GID, u.Name, u.Home())
	}
	return []byte(s)
}

// GroupFile is /etc/group: root's group, nobody's and u's (nil: no user),
// nobody's left out where u's group takes its name or its gid.
func GroupFile(u *User) []byte {
	s := "root:x:0:\n"
	if u == nil || (u.Group != "nobody" && u.GID != NobodyID) {
		s += fmt.Sprintf("nobody:x:%d:\n", NobodyID)
	}
	if u != nil && u.GID != 0 {
		s += fmt.Sprintf("%s:x:%d:\n", u.Group, u.GID)
	}
	return []byte(s)
}
