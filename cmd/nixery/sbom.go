package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/nixery-action/nixery-action/pkg/build"
	"github.com/nixery-action/nixery-action/pkg/ghaction"
	"github.com/nixery-action/nixery-action/pkg/outfile"
	"github.com/nixery-action/nixery-action/pkg/provenance"
)

// sbomOptions are the build's SBOM options from --sbom and --sbom-file:
// nil when they are off. The provenance names this binary's version and,
// in a workflow, the GitHub run.
func (f *buildFlags) sbomOptions() (*build.SBOMOptions, error) {
	if !f.sbom {
		if f.sbomFile != "" {
			return nil, usagef("--sbom-file needs the SBOM that --sbom=false turns off: drop one of them")
		}
		return nil, nil
	}
	if f.sbomFile == "-" {
		return nil, usagef("--sbom-file -: the SBOM cannot go to stdout, which carries the result: name a file")
	}
	if f.sbomFile != "" {
		dir := filepath.Dir(f.sbomFile)
		if info, err := os.Stat(dir); err != nil || !info.IsDir() {
			return nil, usagef("--sbom-file %s: the directory %s does not exist: create it first", f.sbomFile, dir)
		}
		if info, err := os.Stat(f.sbomFile); err == nil && info.IsDir() {
			return nil, usagef("--sbom-file %s is a directory: name a file in it, e.g. %s", f.sbomFile, filepath.Join(f.sbomFile, "sbom.cdx.json"))
		}
		// Found out now, not after the image is pushed.
		if err := outfile.CheckDir(dir); err != nil {
			return nil, fmt.Errorf("--sbom-file %s: cannot write in %s (%v): name a file in a directory you can write to", f.sbomFile, dir, err)
		}
	}
	o := &build.SBOMOptions{ToolVersion: version, GitHub: provenance.GitHubFromEnv(getenv)}
	if f.image != "" {
		// The image's repository, without tag, as the registry names it.
		if ref, err := name.ParseReference(f.image); err == nil {
			o.Name = ref.Context().Name()
		}
	}
	return o, nil
}

// sbomFileName is where the SBOM of platform goes for --sbom-file FILE:
// FILE itself for an image of one platform; with several, FILE with the
// platform inserted before its first extension, e.g. sbom.cdx.json gives
// sbom.linux-amd64.cdx.json and sbom.linux-arm64.cdx.json.
func sbomFileName(file, platform string, platforms int) string {
	if platforms == 1 {
		return file
	}
	dir, base := filepath.Split(file)
	stem, ext := base, ""
	if i := strings.Index(base, "."); len(base) > 1 && i >= 0 {
		if i == 0 { // a leading dot is part of the name
			i = strings.Index(base[1:], ".") + 1
		}
		if i > 0 {
			stem, ext = base[:i], base[i:]
		}
	}
	return dir + stem + "." + strings.ReplaceAll(platform, "/", "-") + ext
}

// writeSBOMs saves each platform's SBOM as sbomFileName says, and notes
// the file in the result.
func writeSBOMs(file string, res *build.Result, logs logSink) error {
	if file == "" {
		return nil
	}
	w, end := logs("")
	defer end()
	for i, s := range res.SBOMs {
		path := sbomFileName(file, s.Platform, len(res.SBOMs))
		if err := os.WriteFile(path, s.SBOM.Data, 0o644); err != nil {
			return fmt.Errorf("write the SBOM of %s: %w", s.Platform, err)
		}
		res.SBOMs[i].File = path
		fmt.Fprintf(w, "wrote the SBOM of %s to %s\n", s.Platform, path)
	}
	return nil
}

// actionSBOMDir has the action save the SBOM, unless it is off, in a
// new directory of the runner's temporary directory, for later steps
// (actions/attest-sbom's sbom-path): the sbom and sboms outputs name it.
// It returns that directory, or "" when it made none. Without a runner
// (no RUNNER_TEMP) nothing would ever remove the file, so none is written.
func actionSBOMDir(f *buildFlags, runnerTemp string) (string, error) {
	if !f.sbom || f.sbomFile != "" || runnerTemp == "" {
		return "", nil
	}
	dir, err := os.MkdirTemp(runnerTemp, "nixery-sbom-")
	if err != nil {
		return "", fmt.Errorf("make a directory for the SBOM: %w", err)
	}
	f.sbomFile = filepath.Join(dir, "sbom.cdx.json")
	return dir, nil
}

// sbomOutputs are the action's sboms output (JSON: platform → SBOM file)
// and, for an image of one platform, sbom (the file); none without files.
func sbomOutputs(res *build.Result) ([][2]string, error) {
	files := map[string]string{}
	for _, s := range res.SBOMs {
		if s.File != "" {
			files[s.Platform] = s.File
		}
	}
	if len(files) == 0 {
		return nil, nil
	}
	raw, err := json.Marshal(files)
	if err != nil {
		return nil, err
	}
	out := [][2]string{{"sboms", string(raw)}}
	if len(res.SBOMs) == 1 {
		out = append(out, [2]string{"sbom", res.SBOMs[0].File})
	}
	return out, nil
}

// sbomSummary is the step summary's table of each platform's SBOM and
// provenance referrers; empty when there are none.
func sbomSummary(res *build.Result) string {
	if len(res.SBOMs) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("| platform | SBOM | provenance | attached |\n|---|---|---|---|\n")
	for _, s := range res.SBOMs {
		attached := "yes"
		if !s.SBOM.Attached {
			attached = "no (not pushed, or a docker archive)"
		}
		fmt.Fprintf(&b, "| %s | `%s` | `%s` | %s |\n", ghaction.MarkdownText(s.Platform), s.SBOM.Digest, s.Provenance.Digest, attached)
	}
	b.WriteString("\n")
	return b.String()
}
