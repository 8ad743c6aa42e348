package main

import (
	"context"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/imgbase/imgbase/internal/volume"
)

// What a flag or argument names, for shell completion.
type nameKind int

const (
	bases nameKind = 1 << iota
	layers
	volumes
)

type completeFunc = func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective)

// completeNames offers the bases, layers or volumes of the layout, read as
// the listings read them (one lvs, no lock). Completion must stay quiet:
// on any error (not root, no layout) it offers nothing.
func (a *app) completeNames(kind nameKind) completeFunc {
	return func(cmd *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
		ctx := cmd.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		var out []string
		for _, n := range a.layoutNames(ctx, kind) {
			if strings.HasPrefix(n, prefix) {
				out = append(out, n)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

func (a *app) layoutNames(ctx context.Context, kind nameKind) []string {
	quiet := *a
	quiet.stdout, quiet.stderr = io.Discard, io.Discard
	s, err := quiet.open(ctx, false)
	if err != nil {
		return nil
	}
	defer s.close()
	t, err := s.host.Layout(ctx)
	if err != nil {
		return nil
	}
	var names []string
	if kind&bases != 0 {
		for _, b := range t.Bases {
			names = append(names, b.Name())
		}
	}
	if kind&layers != 0 {
		for _, l := range t.Layers() {
			names = append(names, l.Name())
		}
	}
	if kind&volumes != 0 {
		for _, lv := range t.Volumes {
			names = append(names, volume.PathOf(lv.Name))
		}
	}
	return names
}

// completeArgs completes the first positional argument only.
func (a *app) completeArgs(kind nameKind) completeFunc {
	names := a.completeNames(kind)
	return func(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return names(cmd, args, prefix)
	}
}

// completeFlags registers kind's completion on each named flag of c.
func (a *app) completeFlags(c *cobra.Command, kind nameKind, flags ...string) {
	for _, f := range flags {
		if err := c.RegisterFlagCompletionFunc(f, a.completeNames(kind)); err != nil {
			panic(err) // a flag name typo in this file
		}
	}
}

// completeWords registers a fixed list of values for flag.
func completeWords(c *cobra.Command, flag string, words ...string) {
	if err := c.RegisterFlagCompletionFunc(flag, cobra.FixedCompletions(words, cobra.ShellCompDirectiveNoFileComp)); err != nil {
		panic(err)
	}
}
