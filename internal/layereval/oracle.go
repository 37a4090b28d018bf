package layereval

import (
	"bytes"
	"sort"

	"github.com/nixery-action/nixery-action/pkg/layers"
)

// OracleSharing is a reference point for Sharing, not a strategy: it
// plans each image knowing which images of the corpus hold each path,
// which a plan made from one image cannot know. Paths held by the same
// images (a co-occurrence class) go together, so such a layer recurs in
// every image that holds any of it; the classes that only this image
// holds share one layer. When the classes exceed the budget, the heaviest
// budget−1 classes held by several images keep their layers and the rest
// joins the image's own layer. It shows how much of the distance to 1 is
// the information a strategy lacks rather than the budget.
func (b *Bench) OracleSharing(budget int) float64 {
	holders := b.holders()
	var plans []*layers.LayerPlan
	for _, img := range b.images {
		classes := b.classes(img.graph, func(i int) string { return string(holders[img.graph.Paths[i].Name]) })
		var shared []layers.Group // the heaviest first, as classes are
		var own []string
		for _, g := range classes {
			if bytes.Count(holders[g.Paths[0]], []byte{1}) == 1 {
				own = append(own, g.Paths...)
				continue
			}
			shared = append(shared, g)
		}
		if n := len(shared); n > budget || n == budget && len(own) > 0 {
			keep := max(budget-1, 0)
			for _, g := range shared[keep:] {
				own = append(own, g.Paths...)
			}
			shared = shared[:keep]
		}
		plan := &layers.LayerPlan{Layers: shared}
		if len(own) > 0 {
			plan.Layers = append(plan.Layers, b.group(own))
		}
		plans = append(plans, plan)
	}
	return Sharing(plans, func(p string) uint64 { return b.sizes[p] })
}

// holders tells, for each store path of the images, which images hold
// it: one byte per image.
func (b *Bench) holders() map[string][]byte {
	holders := map[string][]byte{}
	for i, img := range b.images {
		for _, p := range img.graph.Paths {
			if holders[p.Name] == nil {
				holders[p.Name] = make([]byte, len(b.images))
			}
			holders[p.Name][i] = 1
		}
	}
	return holders
}

// group is the layer of paths, keyed as layers.Plan keys its layers.
func (b *Bench) group(paths []string) layers.Group {
	paths = append([]string(nil), paths...)
	sort.Strings(paths)
	g := layers.Group{Key: layers.KeyOf(paths), Paths: paths}
	for _, p := range paths {
		g.Size += b.sizes[p]
	}
	return g
}
