// Command mkclosures writes the realistic closures the layers tests plan,
// made from Debian's package index (bookworm, main, amd64) and turned into
// what `nix path-info --json --recursive --closure-size` prints: packages
// become store paths (a made-up hash, the package name and version),
// installed sizes become NAR sizes, and dependencies become references
// (the first alternative that exists, virtual packages resolved to their
// first provider by name, Debian's packaging machinery left out, and the
// few dependency cycles Debian allows broken, since Nix closures have
// none). It also writes popularity data counted over the whole index, as
// Nixery's popcount counts it over a channel, for the packages of these
// closures.
//
// The files are inputs, committed as they are; run this only to make new
// ones, then update the golden plans:
//
//	/usr/lib/apt/apt-helper cat-file /var/lib/apt/lists/*_bookworm_main_binary-amd64_Packages.lz4 |
//	  go run ./pkg/layers/testdata/mkclosures -out pkg/layers/testdata
//	go test ./pkg/layers -update
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/nixery-action/nixery-action/pkg/popularity"
	"github.com/nixery-action/nixery-action/pkg/storepath"
)

// closures are the images written: file, requested packages, and whether
// to print Nix 2.19's form (an object keyed by store path).
var closures = []struct {
	file   string
	roots  []string
	object bool
}{
	{"debian-podman.json", []string{"podman"}, false},
	{"debian-python3-git-curl.json", []string{"python3", "git", "curl"}, true},
	{"debian-gimp.json", []string{"gimp"}, false},
}

// machinery is Debian's packaging machinery, which a Nix closure would
// not hold: dependencies on it are dropped.
var machinery = map[string]bool{
	"dpkg": true, "debconf": true, "debconf-2.0": true, "init-system-helpers": true, "adduser": true,
	"lsb-base": true, "sysvinit-utils": true, "ucf": true, "install-info": true,
	"systemd": true, "systemd-sysv": true, "default-mta": true, "mail-transport-agent": true,
}

type pkg struct {
	name, version string
	size          uint64
	clauses       [][]string // each clause: alternatives, first match wins
	deps          []string   // resolved, cycles broken
	path          string
}

type info struct {
	Path        string   `json:"path,omitempty"`
	NarSize     uint64   `json:"narSize"`
	ClosureSize uint64   `json:"closureSize"`
	References  []string `json:"references"`
}

func main() {
	out := flag.String("out", ".", "directory to write the closures to")
	flag.Parse()
	pkgs, err := readIndex(os.Stdin)
	if err != nil {
		log.Fatal(err)
	}
	breakCycles(pkgs)

	refs := map[string][]string{}
	for _, p := range pkgs {
		for _, d := range p.deps {
			refs[p.path] = append(refs[p.path], pkgs[d].path)
		}
	}
	counts := popularity.Compute(refs)
	used := popularity.Data{}
	for _, c := range closures {
		data, members := closure(pkgs, c.roots, c.object)
		write(filepath.Join(*out, c.file), data)
		for _, n := range members {
			if k, ok := counts[storepath.Name(pkgs[n].path)]; ok {
				used[storepath.Name(pkgs[n].path)] = k
			}
		}
	}
	var buf bytes.Buffer
	if err := popularity.Write(&buf, used); err != nil {
		log.Fatal(err)
	}
	write(filepath.Join(*out, "debian-popularity.json"), buf.Bytes())
}

func write(file string, data []byte) {
	if err := os.WriteFile(file, data, 0o644); err != nil {
		log.Fatal(err)
	}
}

// readIndex reads a Packages index and resolves dependencies.
func readIndex(r io.Reader) (map[string]*pkg, error) {
	pkgs := map[string]*pkg{}
	provides := map[string][]string{}
	var cur *pkg
	var depends, preDepends, provided string
	flush := func() {
		if cur == nil {
			return
		}
		for _, clause := range strings.Split(preDepends+","+depends, ",") {
			var alts []string
			for _, alt := range strings.Split(clause, "|") {
				if n := bareName(alt); n != "" {
					alts = append(alts, n)
				}
			}
			if len(alts) > 0 {
				cur.clauses = append(cur.clauses, alts)
			}
		}
		for _, v := range strings.Split(provided, ",") {
			if n := bareName(v); n != "" {
				provides[n] = append(provides[n], cur.name)
			}
		}
		if _, dup := pkgs[cur.name]; !dup { // the first stanza of a package wins
			pkgs[cur.name] = cur
		}
		cur, depends, preDepends, provided = nil, "", "", ""
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			flush()
			continue
		}
		k, v, ok := strings.Cut(line, ": ")
		if !ok || strings.HasPrefix(line, " ") {
			continue
		}
		switch k {
		case "Package":
			cur = &pkg{name: v}
		case "Version":
			cur.version = v
		case "Installed-Size":
			kib, _ := strconv.ParseUint(v, 10, 64)
			cur.size = kib * 1024
		case "Depends":
			depends = v
		case "Pre-Depends":
			preDepends = v
		case "Provides":
			provided = v
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(pkgs) == 0 {
		return nil, fmt.Errorf("no packages on stdin: pipe a Packages index in")
	}
	// A virtual package stands for its first provider by name.
	resolveName := func(n string) string {
		if _, ok := pkgs[n]; ok {
			return n
		}
		if ps := provides[n]; len(ps) > 0 {
			sort.Strings(ps)
			return ps[0]
		}
		return ""
	}
	for _, p := range pkgs {
		p.path = storePath(p.name, p.version)
		seen := map[string]bool{p.name: true}
		for _, alts := range p.clauses {
			for _, a := range alts {
				r := resolveName(a)
				if r == "" {
					continue
				}
				if !seen[r] && !machinery[a] && !machinery[r] {
					seen[r] = true
					p.deps = append(p.deps, r)
				}
				break
			}
		}
		sort.Strings(p.deps)
	}
	return pkgs, nil
}

// bareName is a dependency's package name without version or architecture.
func bareName(dep string) string {
	dep = strings.TrimSpace(dep)
	if i := strings.IndexAny(dep, " (["); i >= 0 {
		dep = dep[:i]
	}
	dep, _, _ = strings.Cut(dep, ":")
	return dep
}

// breakCycles drops the dependencies that close a cycle, visiting packages
// and their dependencies in name order so the result is always the same.
func breakCycles(pkgs map[string]*pkg) {
	state := map[string]int{} // 1 on the stack, 2 done
	var visit func(n string)
	visit = func(n string) {
		state[n] = 1
		p := pkgs[n]
		kept := p.deps[:0]
		for _, d := range p.deps {
			if state[d] == 1 {
				continue
			}
			if state[d] == 0 {
				visit(d)
			}
			kept = append(kept, d)
		}
		p.deps = kept
		state[n] = 2
	}
	var names []string
	for n := range pkgs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if state[n] == 0 {
			visit(n)
		}
	}
}

// storePath makes a store path for a package: a hash made from its name
// and version in Nix's base-32 alphabet, then the name and version with
// the characters Nix does not allow in names replaced.
func storePath(name, version string) string {
	const alphabet = "0123456789abcdfghijklmnpqrsvwxyz"
	sum := sha256.Sum256([]byte(name + " " + version))
	var hash [32]byte
	for i := range hash {
		hash[i] = alphabet[sum[i]%32]
	}
	clean := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("+-._?=", r) {
			return r
		}
		return '_'
	}, name+"-"+version)
	return "/nix/store/" + string(hash[:]) + "-" + clean
}

// closure prints the closure of roots as nix path-info does, and returns
// the packages in it.
func closure(pkgs map[string]*pkg, roots []string, object bool) ([]byte, []string) {
	in := map[string]bool{}
	var walk func(n string)
	walk = func(n string) {
		if in[n] {
			return
		}
		in[n] = true
		for _, d := range pkgs[n].deps {
			walk(d)
		}
	}
	for _, r := range roots {
		if pkgs[r] == nil {
			log.Fatalf("package %s is not in the index", r)
		}
		walk(r)
	}
	var names []string
	for n := range in {
		names = append(names, n)
	}
	sort.Slice(names, func(a, b int) bool { return pkgs[names[a]].path < pkgs[names[b]].path })
	infos := make([]info, 0, len(names))
	for _, n := range names {
		p := pkgs[n]
		i := info{Path: p.path, NarSize: p.size, ClosureSize: closureSize(pkgs, n), References: []string{}}
		for _, d := range p.deps {
			i.References = append(i.References, pkgs[d].path)
		}
		sort.Strings(i.References)
		infos = append(infos, i)
	}
	var data []byte
	var err error
	if object {
		obj := map[string]info{}
		for _, i := range infos {
			p := i.Path
			i.Path = ""
			obj[p] = i
		}
		data, err = json.MarshalIndent(obj, "", "  ")
	} else {
		data, err = json.MarshalIndent(infos, "", "  ")
	}
	if err != nil {
		log.Fatal(err)
	}
	return append(data, '\n'), names
}

func closureSize(pkgs map[string]*pkg, root string) uint64 {
	seen := map[string]bool{}
	var total uint64
	var walk func(n string)
	walk = func(n string) {
		if seen[n] {
			return
		}
		seen[n] = true
		total += pkgs[n].size
		for _, d := range pkgs[n].deps {
			walk(d)
		}
	}
	walk(root)
	return total
}
