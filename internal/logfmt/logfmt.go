// Package logfmt writes log records for a person at a terminal: one
// sentence per record, "imgbase: warning: the image is neither checksummed
// nor signed: /path", instead of slog's key=value lines.
package logfmt

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
)

// Handler is a slog.Handler that writes each record as one line:
//
//	PROG: [LEVEL: ]MESSAGE[: SUBJECT][ (KEY VALUE, …)][; REST]
//
// The first attribute, when it is a string (a path, a name), is the
// record's subject and follows the message after a colon; the others go
// in parentheses, errors ("err", "why") without their key. When the message has a "; " the attributes go before
// it, with what happened rather than after the advice that follows.
type Handler struct {
	prog  string
	level slog.Leveler
	attrs []slog.Attr
	group string

	mu *sync.Mutex
	w  io.Writer
}

// New returns a Handler writing records at level and above to w, each
// line starting with "prog: ".
func New(w io.Writer, prog string, level slog.Leveler) *Handler {
	if level == nil {
		level = slog.LevelInfo
	}
	return &Handler{prog: prog, level: level, mu: &sync.Mutex{}, w: w}
}

func (h *Handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), h.qualify(as)...)
	return &c
}

func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.group = h.group + name + "."
	return &c
}

// qualify prefixes the keys of attributes added under a group.
func (h *Handler) qualify(as []slog.Attr) []slog.Attr {
	if h.group == "" {
		return as
	}
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = slog.Attr{Key: h.group + a.Key, Value: a.Value}
	}
	return out
}

func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	attrs := append([]slog.Attr(nil), h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, h.qualify([]slog.Attr{a})...)
		return true
	})
	line := h.prog + ": " + levelPrefix(r.Level) + Sentence(r.Message, attrs) + "\n"
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, line)
	return err
}

func levelPrefix(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "error: "
	case l >= slog.LevelWarn:
		return "warning: "
	case l >= slog.LevelInfo:
		return ""
	}
	return "debug: "
}

// Sentence folds attrs into msg, on one line.
func Sentence(msg string, attrs []slog.Attr) string {
	var subject string
	var rest []string
	for _, a := range flatten(nil, "", attrs) {
		v := oneLine(value(a.Value))
		switch {
		case subject == "" && len(rest) == 0 && !isReason(a.Key) && a.Value.Kind() == slog.KindString:
			subject = v
		case isReason(a.Key):
			rest = append(rest, v)
		default:
			rest = append(rest, a.Key+" "+v)
		}
	}
	what, after, hasAfter := strings.Cut(msg, "; ")
	var b strings.Builder
	b.WriteString(what)
	if subject != "" {
		b.WriteString(": " + subject)
	}
	if len(rest) > 0 {
		b.WriteString(" (" + strings.Join(rest, ", ") + ")")
	}
	if hasAfter {
		b.WriteString("; " + after)
	}
	return oneLine(b.String())
}

func isReason(key string) bool { return key == "err" || key == "why" }

// flatten turns group values into attributes with dotted keys and drops
// empty ones, as slog's own handlers do.
func flatten(out []slog.Attr, prefix string, as []slog.Attr) []slog.Attr {
	for _, a := range as {
		a.Value = a.Value.Resolve()
		if a.Value.Kind() == slog.KindGroup {
			p := prefix
			if a.Key != "" {
				p += a.Key + "."
			}
			out = flatten(out, p, a.Value.Group())
			continue
		}
		if a.Equal(slog.Attr{}) {
			continue
		}
		a.Key = prefix + a.Key
		out = append(out, a)
	}
	return out
}

func value(v slog.Value) string {
	if v.Kind() != slog.KindAny {
		return v.String()
	}
	switch x := v.Any().(type) {
	case error:
		return x.Error()
	case []string:
		return strings.Join(x, " ")
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v.Any())
}

// oneLine keeps a multi-line error on the record's line.
func oneLine(s string) string {
	return strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ")
}
