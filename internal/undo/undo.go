// Package undo remembers how to take back each step of an operation, so
// that a failure part-way leaves the system as it was.
package undo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// Stack holds the undo steps of one operation, the newest on top.
type Stack struct {
	Log   *slog.Logger
	steps []step
}

type step struct {
	what string
	fn   func(context.Context) error
}

// Push records how to undo the step just done; what names it in logs and
// errors.
func (s *Stack) Push(what string, fn func(context.Context) error) {
	s.steps = append(s.steps, step{what, fn})
}

// Rollback runs the undo steps newest first, even when ctx is done, and
// returns err joined with any failure to undo. The stack is empty after.
func (s *Stack) Rollback(ctx context.Context, err error) error {
	ctx = context.WithoutCancel(ctx)
	for i := len(s.steps) - 1; i >= 0; i-- {
		st := s.steps[i]
		if s.Log != nil {
			s.Log.Info("undoing", "step", st.what)
		}
		if uerr := st.fn(ctx); uerr != nil {
			err = errors.Join(err, fmt.Errorf("cannot undo %s (do it by hand): %w", st.what, uerr))
		}
	}
	s.steps = nil
	return err
}
