package host

import (
	"context"

	"github.com/imgbase/imgbase/internal/hooks"
)

const hookUpdate = hooks.Update

// preHook runs the admin's pre-<event> hooks; a failing one aborts the
// verb before it changes anything.
func (h *Host) preHook(ctx context.Context, ev hooks.Event, names ...string) error {
	if h.Hooks == nil {
		return nil
	}
	if err := h.Hooks.Pre(ctx, ev, names...); err != nil {
		return refuse("%v; fix or remove the hook", err)
	}
	return nil
}

// postHook runs the admin's post-<event> hooks; failures are reported, the
// verb has succeeded.
func (h *Host) postHook(ctx context.Context, ev hooks.Event, names ...string) {
	if h.Hooks == nil {
		return
	}
	for _, err := range h.Hooks.Post(ctx, ev, names...) {
		h.Log.Warn("post hook failed", "err", err)
	}
}
