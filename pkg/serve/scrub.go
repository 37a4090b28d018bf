package serve

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nixery-action/nixery-action/pkg/flakeref"
)

// The nixpkgs reference may carry credentials (git+https://user:TOKEN@…),
// which Nix needs and its messages quote. Neither the server's log nor
// the person pulling sees them: errors sent to clients go through scrub,
// and the log through scrubbed.

// scrub hides the nixpkgs reference's credentials in msg.
func (s *Server) scrub(msg string) string { return flakeref.Scrub(msg, s.secrets) }

// scrubbed is a log handler that hides secrets in every message and
// value.
type scrubbed struct {
	slog.Handler
	secrets []string
}

func (h scrubbed) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, flakeref.Scrub(r.Message, h.secrets), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.Handler.Handle(ctx, out)
}

func (h scrubbed) WithAttrs(attrs []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		clean[i] = h.attr(a)
	}
	return scrubbed{h.Handler.WithAttrs(clean), h.secrets}
}

func (h scrubbed) WithGroup(name string) slog.Handler {
	return scrubbed{h.Handler.WithGroup(name), h.secrets}
}

func (h scrubbed) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, flakeref.Scrub(v.String(), h.secrets))
	case slog.KindGroup:
		group := v.Group()
		clean := make([]any, len(group))
		for i, g := range group {
			clean[i] = h.attr(g)
		}
		return slog.Group(a.Key, clean...)
	case slog.KindAny:
		text := fmt.Sprint(v.Any())
		if clean := flakeref.Scrub(text, h.secrets); clean != text {
			return slog.String(a.Key, clean)
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
