package undo

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestRollbackNewestFirstDespiteFailures(t *testing.T) {
	var order []string
	s := &Stack{}
	s.Push("a", func(context.Context) error { order = append(order, "a"); return nil })
	s.Push("b", func(context.Context) error { order = append(order, "b"); return errors.New("stuck") })
	s.Push("c", func(context.Context) error { order = append(order, "c"); return nil })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Rollback(ctx, errors.New("step d failed"))
	if strings.Join(order, "") != "cba" {
		t.Errorf("order %v", order)
	}
	if err == nil || !strings.Contains(err.Error(), "step d failed") || !strings.Contains(err.Error(), "cannot undo b (do it by hand): stuck") {
		t.Errorf("err = %v", err)
	}
	order = nil
	if err := s.Rollback(context.Background(), nil); err != nil || len(order) != 0 {
		t.Errorf("second rollback: %v %v", err, order)
	}
}
