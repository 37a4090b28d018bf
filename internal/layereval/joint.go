package layereval

import (
	"sort"

	"github.com/nixery-action/nixery-action/pkg/layers"
)

// JointOracle is a reference point for both figures, not a strategy: it
// plans each image knowing which images hold each path (as OracleSharing
// does) and which of the corpus's libraries will be updated, which no
// plan of one image can know. Paths held by the same images and changed
// by the same updates (the libraries in their closure) go together, so
// such a layer recurs wherever its paths do and changes only when all
// of them change. Past the budget, the heaviest classes keep their
// layers and the others are grouped by the updates that change them
// alone (what an update pulls stays exact; sharing is given up), and
// what still exceeds the budget joins one layer. It returns Sharing and
// the update overhead (mean of ratios over the (image, library) pairs),
// a layer being pulled again when an update changes any of its paths.
func (b *Bench) JointOracle(budget int) (sharing, update float64) {
	holders := b.holders()
	var plans []*layers.LayerPlan
	var ratios float64
	var pairs int
	for _, img := range b.images {
		changedBy := b.changedBy(img.graph)
		classes := b.classes(img.graph, func(i int) string {
			return string(holders[img.graph.Paths[i].Name]) + "|" + string(changedBy[i])
		})
		if len(classes) > budget {
			classes = b.coarsen(classes, budget, func(g layers.Group) string {
				i, _ := img.graph.Index(g.Paths[0])
				return string(changedBy[i])
			})
		}
		plans = append(plans, &layers.LayerPlan{Layers: classes})
		for u, lib := range b.updates {
			if _, held := img.graph.Index(lib); !held {
				continue
			}
			var pulled, changed uint64
			for _, g := range classes {
				touched := false
				for _, p := range g.Paths {
					if i, _ := img.graph.Index(p); changedBy[i][u] == 1 {
						changed += b.sizes[p]
						touched = true
					}
				}
				if touched {
					pulled += g.Size
				}
			}
			ratios += float64(pulled) / float64(changed)
			pairs++
		}
	}
	if pairs > 0 {
		update = ratios / float64(pairs)
	}
	return Sharing(plans, func(p string) uint64 { return b.sizes[p] }), update
}

// changedBy tells, for each path of g, which updated libraries are in its
// closure (the updates that change it): one byte per library.
func (b *Bench) changedBy(g *layers.Graph) [][]byte {
	out := make([][]byte, len(g.Paths))
	for _, i := range g.TopoOrder() { // references first
		out[i] = make([]byte, len(b.updates))
		for u, lib := range b.updates {
			if g.Paths[i].Name == lib {
				out[i][u] = 1
			}
		}
		for _, r := range g.Refs[i] {
			for u, v := range out[r] {
				out[i][u] |= v
			}
		}
	}
	return out
}

// classes groups g's paths by key, the heaviest group first.
func (b *Bench) classes(g *layers.Graph, key func(i int) string) []layers.Group {
	byKey := map[string][]string{}
	for i, p := range g.Paths {
		byKey[key(i)] = append(byKey[key(i)], p.Name)
	}
	var out []layers.Group
	for _, paths := range byKey {
		out = append(out, b.group(paths))
	}
	sortGroups(out)
	return out
}

// coarsen keeps the heaviest groups and regroups the rest by key, keeping
// as many as fit in budget; what still exceeds it joins one group.
func (b *Bench) coarsen(groups []layers.Group, budget int, key func(layers.Group) string) []layers.Group {
	for keep := len(groups) - 1; keep >= 0; keep-- {
		byKey := map[string][]string{}
		for _, g := range groups[keep:] {
			byKey[key(g)] = append(byKey[key(g)], g.Paths...)
		}
		if keep+len(byKey) > budget && keep > 0 {
			continue
		}
		out := append([]layers.Group(nil), groups[:keep]...)
		for _, paths := range byKey {
			out = append(out, b.group(paths))
		}
		sortGroups(out)
		if len(out) > budget {
			var rest []string
			for _, g := range out[budget-1:] {
				rest = append(rest, g.Paths...)
			}
			out = append(out[:budget-1], b.group(rest))
		}
		return out
	}
	return groups
}

// sortGroups orders groups heaviest first, then by key.
func sortGroups(gs []layers.Group) {
	sort.Slice(gs, func(x, y int) bool {
		if gs[x].Size != gs[y].Size {
			return gs[x].Size > gs[y].Size
		}
		return gs[x].Key < gs[y].Key
	})
}
