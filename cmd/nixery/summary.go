package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/nixery-action/nixery-action/pkg/build"
	"github.com/nixery-action/nixery-action/pkg/publish"
)

// printResult prints the line saying what became of the image.
func printResult(w io.Writer, res *publish.Result) error {
	_, err := fmt.Fprintln(w, resultLine(res))
	return err
}

// resultLine says what became of the image: where it went, pinned by
// digest, under which tags, and what was sent.
func resultLine(res *publish.Result) string {
	sent, present, total := 0, 0, 0
	for _, m := range res.Manifests {
		for _, l := range m.Layers {
			total++
			if l.Uploaded {
				sent++
			} else {
				present++
			}
		}
	}
	var details []string
	if len(res.Manifests) > 1 {
		details = append(details, plural(len(res.Manifests), "platform", "platforms"))
	}
	tags := strings.Join(res.Tags, ", ")
	var line string
	switch {
	case !res.Pushed:
		if total > 0 {
			details = append(details, plural(total, "layer", "layers"))
		}
		switch {
		case res.Image == "":
			line = "built, not pushed: " + res.Digest
		case len(res.Repositories) > 1:
			var each []string
			for _, r := range res.Repositories {
				each = append(each, "to "+pushedAs(r.Image, r.Tags))
			}
			line = "built, not pushed: " + res.Digest
			details = append([]string{"would be pushed " + strings.Join(each, "; ")}, details...)
		case len(res.Tags) == 0:
			line = "built, not pushed: " + res.Image + "@" + res.Digest
			details = append([]string{"would be pushed by digest"}, details...)
		default:
			line = "built, not pushed: " + res.Image + "@" + res.Digest
			details = append([]string{"would be pushed as " + tags}, details...)
		}
	case res.Reference != "":
		if total > 0 {
			to := ""
			if len(res.Repositories) > 1 { // the counts are the first's
				to = " to " + res.Image
			}
			details = append(details, fmt.Sprintf("%s uploaded%s, %d already there", plural(sent, "layer", "layers"), to, present))
		}
		switch {
		case len(res.Repositories) > 1:
			var each []string
			for _, r := range res.Repositories {
				each = append(each, pushedAs(r.Reference, r.Tags))
			}
			line = "pushed " + strings.Join(each, "; ")
		case len(res.Tags) == 0:
			line = "pushed by digest, no tags: " + res.Reference
		default:
			line = "pushed " + pushedAs(res.Reference, res.Tags)
		}
	default: // an OCI layout or docker archive
		if total > 0 {
			details = append(details, fmt.Sprintf("%s written, %d already there", plural(sent, "layer", "layers"), present))
		}
		line = "wrote " + res.Image + ": " + res.Digest
		if tags != "" {
			line += " as " + tags
		}
	}
	if len(details) > 0 {
		line += " (" + strings.Join(details, "; ") + ")"
	}
	return line
}

// pushedAs is a reference pushed (or that would be) under tags: "REF as
// v1, latest", or "REF by digest".
func pushedAs(ref string, tags []string) string {
	if len(tags) == 0 {
		return ref + " by digest"
	}
	return ref + " as " + strings.Join(tags, ", ")
}

// formatTimings is the timings on one line: "lock 0.19s, nix linux/amd64
// 0.59s, ..., total 1.40s".
func formatTimings(t build.Timings) string {
	var parts []string
	for _, p := range t.Phases() {
		name := p.Name
		if p.Platform != "" {
			name += " " + p.Platform
		}
		parts = append(parts, fmt.Sprintf("%s %.2fs", name, p.Seconds))
	}
	return strings.Join(parts, ", ")
}
