package layers

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/nixery-action/nixery-action/internal/limit"
	"github.com/nixery-action/nixery-action/pkg/storepath"
	"io"
	"math/bits"
	"sort"
	"strings"
)

// Path is one store path of a closure.
type Path struct {
	Name        string // full store path, e.g. /nix/store/<hash>-hello-2.12
	NarSize     uint64 // bytes of the path itself
	ClosureSize uint64 // bytes of the path and everything it references
	NarHash     string // as Nix prints it (sha256-<base64> or sha256:<base32>); empty when not given
}

// Graph is a closure: store paths and their references, indexed so that
// strategies can work on integers. Paths are sorted by name, so the same
// closure always yields the same indexes.
type Graph struct {
	Paths []Path
	Refs  [][]int // Refs[i]: indexes of the paths Paths[i] references, sorted, self excluded
	// Roots are the requested paths, sorted; by default the paths nothing
	// references. Strategies place the paths they do not reach too.
	Roots []int

	index map[string]int
}

// MaxClosureBytes bounds the closure graph JSON that ReadGraph and
// ParseGraph accept. Nix prints about 1 KiB a path (hash, sizes, deriver,
// signatures and some ten references), so a closure of 100,000 paths is
// about 100 MiB: the bound leaves more than twice that, and memory stays bounded
// for endless input.
const MaxClosureBytes = 256 << 20

// MaxClosurePaths bounds the store paths of one closure graph: ten times
// a closure of 100,000 paths, far more than any image holds.
const MaxClosurePaths = 1_000_000

// errClosureTooLarge says what to do about input past MaxClosureBytes.
var errClosureTooLarge = fmt.Errorf("closure graph: larger than %s, the bound on closure graphs (MaxClosureBytes; a closure of 100,000 paths is about 100 MiB): give the output of `nix path-info --json --recursive --closure-size`", limit.Size(MaxClosureBytes))

// ReadGraph reads a closure graph from r, as ParseGraph parses it, reading
// no more than MaxClosureBytes: input that does not start as JSON (a
// device such as /dev/zero) fails at once, longer input at the bound. An
// error reading r is returned as it is.
func ReadGraph(r io.Reader) (*Graph, error) {
	var le *limit.Error
	if err := limit.CheckSize(r, MaxClosureBytes); errors.As(err, &le) {
		return nil, errClosureTooLarge
	}
	br := bufio.NewReader(r)
	for {
		b, err := br.ReadByte()
		if errors.Is(err, io.EOF) {
			break // empty input: ParseGraph names it
		}
		if err != nil {
			return nil, err
		}
		if !isJSONSpace(b) {
			if b != '[' && b != '{' {
				return nil, errNotPathInfo
			}
			br.UnreadByte()
			break
		}
	}
	data, err := limit.ReadAll(br, MaxClosureBytes)
	if errors.As(err, &le) {
		return nil, errClosureTooLarge
	}
	if err != nil {
		return nil, err
	}
	return ParseGraph(data)
}

func isJSONSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

var errNotPathInfo = fmt.Errorf("closure graph: expected the JSON list or object printed by `nix path-info --json --recursive --closure-size`")

// pathInfo is one entry of `nix path-info --json --recursive --closure-size`.
// Other fields (deriver, signatures, ca, ...) are not needed.
type pathInfo struct {
	Path        string   `json:"path"`
	NarHash     anyHash  `json:"narHash"`
	NarSize     uint64   `json:"narSize"`
	ClosureSize uint64   `json:"closureSize"`
	References  []string `json:"references"`
	Valid       *bool    `json:"valid"`    // older Nix prints false for paths not in the store
	StoreDir    string   `json:"storeDir"` // newer JSON formats name the store directory
}

// ParseGraph reads what `nix path-info --json --recursive --closure-size`
// prints: a JSON list of path infos (Nix 2.18 and older), an object keyed
// by store path (Nix 2.19 and newer), or that object inside the versioned
// wrapper of --json-format 2 and 3 (Nix 2.33 and newer). Store paths may also be given without
// the store directory, as newer JSON formats print them. The closure must be
// complete: every reference must be one of the paths. Each error names the
// path or entry at fault.
func ParseGraph(data []byte) (*Graph, error) {
	if len(data) > MaxClosureBytes {
		return nil, errClosureTooLarge
	}
	data = bytes.TrimSpace(data)
	var infos []pathInfo
	switch {
	case len(data) > 0 && data[0] == '[':
		var err error
		if infos, err = decodeList(data); err != nil {
			return nil, err
		}
	case len(data) > 0 && data[0] == '{':
		// Duplicate keys are invisible after decoding into a map, so the
		// object is read token by token.
		data, err := unwrapVersioned(data)
		if err != nil {
			return nil, err
		}
		if infos, err = decodeObject(data); err != nil {
			return nil, err
		}
	case len(data) == 0:
		return nil, fmt.Errorf("closure graph: no input: expected the JSON printed by `nix path-info --json --recursive --closure-size`")
	default:
		return nil, errNotPathInfo
	}
	return newGraph(infos)
}

// pathBound is MaxClosurePaths; tests lower it.
var pathBound = MaxClosurePaths

// tooManyPaths is returned as soon as a closure has more than pathBound
// paths, before they are all decoded.
func tooManyPaths() error {
	return fmt.Errorf("closure graph: more than %d paths, the bound on one closure (MaxClosurePaths): give the closure of one image", pathBound)
}

// decodeList reads the list form entry by entry (memory stays bounded by
// pathBound, however small the entries), and names the entry at fault.
func decodeList(data []byte) ([]pathInfo, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("closure graph: invalid JSON list: %w", err)
	}
	var infos []pathInfo
	for i := 0; dec.More(); i++ {
		if i == pathBound {
			return nil, tooManyPaths()
		}
		var info *pathInfo
		if err := dec.Decode(&info); err != nil {
			return nil, listEntryError(data, i, err)
		}
		if info == nil {
			return nil, fmt.Errorf("closure graph: entry %d is null, not a path info", i)
		}
		if info.Path == "" {
			return nil, fmt.Errorf("closure graph: entry %d has no \"path\"", i)
		}
		infos = append(infos, *info)
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("closure graph: invalid JSON list: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("closure graph: invalid JSON list: unexpected data after the list")
	}
	return infos, nil
}

// listEntryError names entry i of the list, which failed to decode with
// err: by its path when the entry has one. It reads the list again, as
// raw entries, only on this error path.
func listEntryError(data []byte, i int, err error) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, terr := dec.Token(); terr == nil {
		for n := 0; n <= i && dec.More(); n++ {
			var raw json.RawMessage
			if dec.Decode(&raw) != nil {
				break
			}
			if n < i {
				continue
			}
			var named struct{ Path string }
			if json.Unmarshal(raw, &named) == nil && named.Path != "" {
				return fmt.Errorf("closure graph: entry %d (%s): %w", i, named.Path, err)
			}
			return fmt.Errorf("closure graph: entry %d: %w", i, err)
		}
	}
	return fmt.Errorf("closure graph: invalid JSON list: %w", err)
}

func decodeObject(data []byte) ([]pathInfo, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("closure graph: invalid JSON object: %w", err)
	}
	var infos []pathInfo
	for dec.More() {
		if len(infos) == pathBound {
			return nil, tooManyPaths()
		}
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("closure graph: invalid JSON object: %w", err)
		}
		key, _ := tok.(string)
		var info *pathInfo
		if err := dec.Decode(&info); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("closure graph: invalid JSON object: the input ends in entry %q", key)
			}
			return nil, fmt.Errorf("closure graph: entry %q: %w", key, err)
		}
		if info == nil {
			// Newer Nix prints null for a path that is not valid.
			return nil, fmt.Errorf("closure graph: %s has no path info (null): is it in the store? Build or fetch it first", key)
		}
		if info.Path != "" && storepath.Full(info.Path) != storepath.Full(key) {
			return nil, fmt.Errorf("closure graph: entry %q has path %q", key, info.Path)
		}
		info.Path = key
		infos = append(infos, *info)
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("closure graph: invalid JSON object: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("closure graph: unexpected data after the JSON object")
	}
	return infos, nil
}

// anyHash keeps a narHash printed as a string and ignores other forms
// (newer JSON formats may print an object), which nothing here needs.
type anyHash string

func (h *anyHash) UnmarshalJSON(data []byte) error {
	var s string
	if json.Unmarshal(data, &s) == nil {
		*h = anyHash(s)
	}
	return nil
}

func newGraph(infos []pathInfo) (*Graph, error) {
	if len(infos) == 0 {
		return nil, fmt.Errorf("closure graph is empty")
	}
	for i := range infos {
		info := &infos[i]
		if info.StoreDir != "" && strings.TrimSuffix(info.StoreDir, "/")+"/" != storepath.Dir {
			return nil, fmt.Errorf("closure graph: %s is in the store %s, but images can only hold paths under %s", info.Path, info.StoreDir, storepath.Dir)
		}
		info.Path = storepath.Full(info.Path)
		if info.Valid != nil && !*info.Valid {
			return nil, fmt.Errorf("closure graph: %s is not valid (not in the store): build or fetch it first", info.Path)
		}
		for j, r := range info.References {
			info.References[j] = storepath.Full(r)
		}
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Path < infos[j].Path })
	g := &Graph{
		Paths: make([]Path, len(infos)),
		Refs:  make([][]int, len(infos)),
		index: make(map[string]int, len(infos)),
	}
	for i, info := range infos {
		if !storepath.Valid(info.Path) {
			return nil, fmt.Errorf("closure graph: %q is not a store path under %s", info.Path, storepath.Dir)
		}
		if _, dup := g.index[info.Path]; dup {
			return nil, fmt.Errorf("closure graph: %s appears more than once", info.Path)
		}
		g.index[info.Path] = i
		g.Paths[i] = Path{Name: info.Path, NarSize: info.NarSize, ClosureSize: info.ClosureSize, NarHash: string(info.NarHash)}
	}
	referenced := make([]bool, len(infos))
	for i, info := range infos {
		refs := make([]int, 0, len(info.References))
		for _, r := range info.References {
			j, ok := g.index[r]
			if !ok {
				return nil, fmt.Errorf("closure graph: %s references %q, which is not in the graph (pass the whole closure: nix path-info --recursive)", info.Path, r)
			}
			if j != i {
				refs = append(refs, j)
				referenced[j] = true
			}
		}
		sort.Ints(refs)
		g.Refs[i] = dedupe(refs)
	}
	for i := range g.Paths {
		if !referenced[i] {
			g.Roots = append(g.Roots, i)
		}
	}
	if len(g.Roots) == 0 {
		return nil, fmt.Errorf("closure graph: every path is referenced by another, so there is no root (is there a reference cycle?)")
	}
	if cyc := g.findCycle(); cyc != "" {
		return nil, fmt.Errorf("closure graph: reference cycle through %s", cyc)
	}
	g.fillClosureSizes()
	return g, nil
}

func dedupe(s []int) []int {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// Index returns the index of a store path, or false when it is not in the graph.
func (g *Graph) Index(path string) (int, bool) {
	i, ok := g.index[path]
	return i, ok
}

// SetRoots replaces the default roots with the requested paths, the
// packages an image was asked for. An empty list keeps the default.
func (g *Graph) SetRoots(paths []string) error {
	if len(paths) == 0 {
		return nil
	}
	seen := map[int]bool{}
	var roots []int
	for _, p := range paths {
		i, ok := g.index[storepath.Full(p)]
		if !ok {
			return fmt.Errorf("root %q is not in the closure graph: name a store path of the closure", p)
		}
		if !seen[i] {
			seen[i] = true
			roots = append(roots, i)
		}
	}
	sort.Ints(roots)
	g.Roots = roots
	return nil
}

// unreferenced returns the paths no other path references, sorted.
func (g *Graph) unreferenced() []int {
	referenced := make([]bool, len(g.Paths))
	for _, refs := range g.Refs {
		for _, r := range refs {
			referenced[r] = true
		}
	}
	var out []int
	for i, ok := range referenced {
		if !ok {
			out = append(out, i)
		}
	}
	return out
}

// TopoOrder returns the path indexes with every path after the paths it
// references (dependencies first), ties broken by name.
func (g *Graph) TopoOrder() []int {
	order := make([]int, 0, len(g.Paths))
	state := make([]uint8, len(g.Paths)) // 0 new, 1 visiting, 2 done
	var visit func(int)
	visit = func(i int) {
		if state[i] != 0 {
			return
		}
		state[i] = 1
		for _, r := range g.Refs[i] {
			visit(r)
		}
		state[i] = 2
		order = append(order, i)
	}
	for i := range g.Paths {
		visit(i)
	}
	return order
}

// findCycle returns a path on a reference cycle, or "" when there is none.
// Nix closures have no cycles apart from self references, which are
// already dropped.
func (g *Graph) findCycle() string {
	state := make([]uint8, len(g.Paths))
	var found = -1
	var visit func(int) bool
	visit = func(i int) bool {
		switch state[i] {
		case 1:
			found = i
			return true
		case 2:
			return false
		}
		state[i] = 1
		for _, r := range g.Refs[i] {
			if visit(r) {
				return true
			}
		}
		state[i] = 2
		return false
	}
	for i := range g.Paths {
		if visit(i) {
			return g.Paths[found].Name
		}
	}
	return ""
}

// fillClosureSizes computes ClosureSize for paths whose input left it zero.
//
// A closure is a set, so sizes cannot be summed up the graph; the paths
// are taken in chunks of closureChunk positions of a topological order
// instead, and for each chunk every path gets the set of its closure's
// paths in that chunk, as a bitmap: the union of its references' bitmaps.
// A table per byte of the bitmap turns it into bytes. The bitmaps take
// closureChunk bits a path (1 KiB: 300 MiB for 300,000 paths; smaller
// chunks save memory but cost more time, twice as much for a quarter of
// the memory); time is about (references + paths) × paths / 64 word
// operations, plus a pass over the paths per chunk.
func (g *Graph) fillClosureSizes() {
	missing := false
	for _, p := range g.Paths {
		if p.ClosureSize == 0 && p.NarSize != 0 {
			missing = true
			break
		}
	}
	if !missing {
		return
	}
	n := len(g.Paths)
	order := g.TopoOrder() // references first
	pos := make([]int, n)
	for k, i := range order {
		pos[i] = k
	}
	chunk := min(closureChunk, (n+63)/64*64)
	words := chunk / 64
	bitmaps := make([]uint64, n*words)
	tables := make([][256]uint64, words*8)
	totals := make([]uint64, n)
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		// Byte tables: table[b][v] is the size of the paths whose bits
		// are set in v at byte b of the chunk.
		for b := range tables {
			t := &tables[b]
			t[0] = 0
			for v := 1; v < 256; v++ {
				low := bits.TrailingZeros8(uint8(v))
				var size uint64
				if k := lo + b*8 + low; k < hi {
					size = g.Paths[order[k]].NarSize
				}
				t[v] = t[v&(v-1)] + size
			}
		}
		// Paths before lo in the order cannot reach the chunk.
		for k := lo; k < n; k++ {
			i := order[k]
			d := bitmaps[k*words : (k+1)*words]
			clear(d)
			if k < hi {
				d[(k-lo)/64] |= 1 << ((k - lo) % 64)
			}
			for _, r := range g.Refs[i] {
				if rk := pos[r]; rk >= lo {
					for w, v := range bitmaps[rk*words : (rk+1)*words] {
						d[w] |= v
					}
				}
			}
			var total uint64
			for w, v := range d {
				for b := 0; v != 0; b, v = b+1, v>>8 {
					total += tables[w*8+b][v&0xff]
				}
			}
			totals[i] += total
		}
	}
	for i := range g.Paths {
		if g.Paths[i].ClosureSize == 0 {
			g.Paths[i].ClosureSize = totals[i]
		}
	}
}

// closureChunk is how many paths fillClosureSizes takes at a time (a
// multiple of 64): 100,000 paths then need 100,000 × 1 kB of bitmaps. A
// variable so that tests can make chunks small.
var closureChunk = 8192
