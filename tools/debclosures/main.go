// Command debclosures turns Debian's package index into dependency graphs
// shaped like Nix closures: packages stand for store paths, installed
// sizes for NAR sizes, dependencies for references (each dependency's
// first alternative, a virtual package standing for its first provider by
// name, Debian's packaging infrastructure left out), and the few cycles
// Debian allows are broken, since Nix closures have none. It reads a
// Packages file on standard input and writes what its flags ask for:
//
//	-closures DIR  the closures the pkg/layers tests plan, as
//	               `nix path-info --json --recursive --closure-size` prints
//	               them (made-up store paths), and popularity data counted
//	               over the whole index, as Nixery's popcount counts it
//	-corpus FILE   the layering evaluation corpus of internal/layereval
//	               (gzip'd JSON)
//
// Both are committed as they are; run this only to make new ones:
//
//	/usr/lib/apt/apt-helper cat-file /var/lib/apt/lists/*_bookworm_main_binary-amd64_Packages.lz4 |
//	  go run ./tools/debclosures -closures pkg/layers/testdata -corpus internal/layereval/testdata/corpus.json.gz
//	go test ./pkg/layers -update
//
// bench/compare-layering.sh --regenerate runs it for the corpus.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

// infrastructure is what Debian's packaging needs but a Nix closure would
// not hold: dependencies on these are dropped.
var infrastructure = map[string]bool{
	"dpkg": true, "debconf": true, "debconf-2.0": true, "init-system-helpers": true, "adduser": true,
	"lsb-base": true, "sysvinit-utils": true, "ucf": true, "sensible-utils": true, "install-info": true,
	"systemd": true, "systemd-sysv": true, "default-mta": true, "mail-transport-agent": true,
}

type pkg struct {
	version string
	size    uint64     // bytes
	deps    [][]string // each dependency's alternatives, in order
}

func main() {
	closures := flag.String("closures", "", "directory to write the pkg/layers test closures and popularity data to")
	corpus := flag.String("corpus", "", "file to write the layering evaluation corpus to")
	flag.Parse()
	if *closures == "" && *corpus == "" {
		fail(fmt.Errorf("nothing to write: give -closures DIR, -corpus FILE or both"))
	}
	idx, err := parse(bufio.NewReaderSize(os.Stdin, 1<<20))
	if err != nil {
		fail(fmt.Errorf("reading the package index: %w", err))
	}
	if len(idx.pkgs) == 0 {
		fail(fmt.Errorf("no packages on standard input: pipe in a Debian Packages file"))
	}
	if *closures != "" {
		if err := writeClosures(idx, *closures); err != nil {
			fail(err)
		}
	}
	if *corpus != "" {
		if err := writeCorpus(idx, *corpus); err != nil {
			fail(err)
		}
	}
}

// index is a parsed Packages file.
type index struct {
	pkgs     map[string]*pkg
	provides map[string][]string // virtual package → its providers
}

// resolve picks a dependency's first alternative that the index has, a
// virtual package standing for its first provider by name; "" drops the
// dependency (none is in the index, or the one picked is packaging
// infrastructure).
func (idx *index) resolve(alts []string) string {
	for _, a := range alts {
		r := a
		if _, ok := idx.pkgs[a]; !ok {
			ps := idx.provides[a]
			if len(ps) == 0 {
				continue // not in this index: try the next
			}
			ps = append([]string(nil), ps...)
			sort.Strings(ps)
			r = ps[0]
		}
		if infrastructure[a] || infrastructure[r] {
			return ""
		}
		return r
	}
	return ""
}

// graph resolves the dependencies of roots and of everything they pull
// in, every package of the index when roots is empty, and breaks the
// cycles: name → its dependencies, sorted.
func (idx *index) graph(roots []string) (map[string][]string, error) {
	deps := map[string][]string{}
	var visit func(string)
	visit = func(name string) {
		if _, done := deps[name]; done {
			return
		}
		deps[name] = nil
		var out []string
		for _, alts := range idx.pkgs[name].deps {
			if d := idx.resolve(alts); d != "" && d != name {
				out = append(out, d)
			}
		}
		sort.Strings(out)
		out = dedupe(out)
		deps[name] = out
		for _, d := range out {
			visit(d)
		}
	}
	if len(roots) == 0 {
		for n := range idx.pkgs {
			roots = append(roots, n)
		}
	}
	for _, r := range roots {
		if _, ok := idx.pkgs[r]; !ok {
			return nil, fmt.Errorf("package %s is not in the index", r)
		}
		visit(r)
	}
	breakCycles(deps)
	return deps, nil
}

// breakCycles drops the edges that close a cycle in a depth-first walk in
// name order, so the same index always gives the same graph.
func breakCycles(deps map[string][]string) {
	state := map[string]int{} // 0 new, 1 on the walk, 2 done
	var names []string
	for n := range deps {
		names = append(names, n)
	}
	sort.Strings(names)
	var visit func(string)
	visit = func(n string) {
		state[n] = 1
		var kept []string
		for _, d := range deps[n] {
			if state[d] == 1 {
				continue // back edge
			}
			kept = append(kept, d)
			if state[d] == 0 {
				visit(d)
			}
		}
		deps[n] = kept
		state[n] = 2
	}
	for _, n := range names {
		if state[n] == 0 {
			visit(n)
		}
	}
}

// parse reads a Debian Packages file: each package's version, size and
// dependencies, and which packages provide each virtual package.
func parse(r io.Reader) (*index, error) {
	pkgs := map[string]*pkg{}
	provides := map[string][]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	var name string
	cur := &pkg{}
	var provided []string
	flush := func() {
		if name != "" {
			pkgs[name] = cur
			for _, p := range provided {
				provides[p] = append(provides[p], name)
			}
		}
		name, cur, provided = "", &pkg{}, nil
	}
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			flush()
			continue
		}
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		switch k {
		case "Package":
			name = v
		case "Version":
			cur.version = v
		case "Installed-Size":
			kib, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("package %s: Installed-Size %q: %w", name, v, err)
			}
			cur.size = kib * 1024
		case "Depends", "Pre-Depends":
			for _, d := range strings.Split(v, ",") {
				var alts []string
				for _, a := range strings.Split(d, "|") {
					if a = bareName(a); a != "" {
						alts = append(alts, a)
					}
				}
				if len(alts) > 0 {
					cur.deps = append(cur.deps, alts)
				}
			}
		case "Provides":
			for _, p := range strings.Split(v, ",") {
				if p = bareName(p); p != "" {
					provided = append(provided, p)
				}
			}
		}
	}
	flush()
	return &index{pkgs: pkgs, provides: provides}, sc.Err()
}

// bareName drops a relation's version constraint and architecture
// qualifier: "libc6:any (>= 2.34)" is "libc6".
func bareName(rel string) string {
	rel = strings.TrimSpace(rel)
	if i := strings.IndexAny(rel, " (["); i >= 0 {
		rel = rel[:i]
	}
	rel, _, _ = strings.Cut(rel, ":")
	return rel
}

func dedupe(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "debclosures:", err)
	os.Exit(1)
}
