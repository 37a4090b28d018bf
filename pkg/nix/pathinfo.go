package nix

import (
	"context"
	"errors"
	"io"
	"strings"
)

// pathInfo runs nix path-info on the outputs. Nix 2.33 and later version
// their JSON and warn unless --json-format is given; older versions refuse
// the flag. The first call finds out which kind of Nix this is.
func (b *Builder) pathInfo(ctx context.Context, log io.Writer, system string, paths []string) ([]byte, error) {
	what := "reading the closure for " + system
	prefix := b.prefix(system)
	base := []string{"path-info", "--json", "--recursive", "--closure-size"}
	b.mu.Lock()
	format := b.jsonFormat
	b.mu.Unlock()
	if format >= 0 {
		args := append(append(append([]string{}, base...), "--json-format", "1", "--"), paths...)
		// Quiet: an older Nix's complaint about the flag is expected.
		out, err := b.run(ctx, nil, what, prefix, args...)
		var ce *CommandError
		switch {
		case err == nil:
			b.setJSONFormat(1)
			return out, nil
		case errors.As(err, &ce) && strings.Contains(ce.Headline, "json-format"):
			b.setJSONFormat(-1)
		default:
			return nil, err
		}
	}
	return b.run(ctx, log, what, prefix, append(append(base, "--"), paths...)...)
}

func (b *Builder) setJSONFormat(v int) {
	b.mu.Lock()
	b.jsonFormat = v
	b.mu.Unlock()
}
