package grubcfg

import (
	"fmt"
	"strings"
	"testing"

	"github.com/imgbase/imgbase/internal/boot/grubenv"
)

// grubShell interprets the subset of GRUB's script language Script uses
// (if/elif/else/fi, set, load_env, save_env, [ -n -z -s = != -a ]), so the
// test checks the real script text against the Go model, not a copy.
type grubShell struct {
	vars  map[string]string
	env   *grubenv.Env // the grubenv file
	saves int
}

func (g *grubShell) expand(w string) string {
	var b strings.Builder
	inSingle := false
	for i := 0; i < len(w); i++ {
		c := w[i]
		switch {
		case c == '\'':
			inSingle = !inSingle
		case c == '"' && !inSingle:
		case c == '$' && !inSingle && i+1 < len(w) && w[i+1] == '{':
			j := strings.IndexByte(w[i:], '}')
			b.WriteString(g.vars[w[i+2:i+j]])
			i += j
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func (g *grubShell) words(line string) []string {
	var out []string
	for _, w := range strings.Fields(strings.TrimSuffix(strings.TrimSpace(line), "; then")) {
		out = append(out, g.expand(w))
	}
	return out
}

func (g *grubShell) test(args []string) bool {
	if args[0] != "[" || args[len(args)-1] != "]" {
		panic(fmt.Sprintf("not a test: %q", args))
	}
	args = args[1 : len(args)-1]
	for i, a := range args {
		if a == "-a" {
			return g.test(append(append([]string{"["}, args[:i]...), "]")) && g.test(append(append([]string{"["}, args[i+1:]...), "]"))
		}
	}
	switch {
	case len(args) == 2 && args[0] == "-n":
		return args[1] != ""
	case len(args) == 2 && args[0] == "-z":
		return args[1] == ""
	case len(args) == 2 && args[0] == "-s":
		return true
	case len(args) == 3 && args[1] == "=":
		return args[0] == args[2]
	case len(args) == 3 && args[1] == "!=":
		return args[0] != args[2]
	}
	panic(fmt.Sprintf("unknown test %q", args))
}

func (g *grubShell) run(script string) {
	// stack of (this branch runs, some branch already ran)
	type frame struct{ on, done, parentOn bool }
	var st []frame
	on := func() bool { return len(st) == 0 || st[len(st)-1].on }
	for _, line := range strings.Split(script, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		switch {
		case strings.HasPrefix(line, "if "):
			p := on()
			c := p && g.test(g.words(line)[1:])
			st = append(st, frame{on: c, done: c, parentOn: p})
			continue
		case strings.HasPrefix(line, "elif "):
			f := &st[len(st)-1]
			c := f.parentOn && !f.done && g.test(g.words(line)[1:])
			f.on, f.done = c, f.done || c
			continue
		case line == "else":
			f := &st[len(st)-1]
			f.on = f.parentOn && !f.done
			continue
		case line == "fi":
			st = st[:len(st)-1]
			continue
		}
		if !on() {
			continue
		}
		w := g.words(line)
		switch w[0] {
		case "set":
			k, v, _ := strings.Cut(w[1], "=")
			g.vars[k] = v
		case "load_env":
			for _, k := range g.env.Keys() {
				g.vars[k] = g.env.Get(k)
			}
		case "save_env":
			g.saves++
			for _, k := range w[1:] {
				g.env.Set(k, g.vars[k])
			}
		default:
			panic("unknown command " + w[0])
		}
	}
}

func TestScriptMatchesModel(t *testing.T) {
	n := 0
	for _, next := range []string{"", "L2"} {
		for _, status := range []string{"", StatusTry, StatusTrying, StatusFailed, "junk"} {
			for _, try := range []string{"", "L3"} {
				for _, saved := range []string{"", "L1"} {
					for _, once := range []bool{false, true} {
						env := grubenv.New()
						env.Set(SavedEntry, saved)
						env.Set(NextEntry, next)
						env.Set(TryEntry, try)
						env.Set(BootStatus, status)
						name := fmt.Sprintf("next=%q status=%q try=%q saved=%q once=%v", next, status, try, saved, once)

						wantEntry, wantSaved := Select(env.Clone(), once)

						g := &grubShell{vars: map[string]string{"prefix": "(hd0,msdos1)/grub"}, env: env.Clone()}
						if once {
							g.vars["boot_once"] = "true"
						}
						g.run(Script)
						if g.vars["default"] != wantEntry {
							t.Errorf("%s: script boots %q, model %q", name, g.vars["default"], wantEntry)
						}
						if wantSaved == nil {
							if g.saves != 0 || !g.env.Equal(env) {
								t.Errorf("%s: script saved grubenv, model did not", name)
							}
						} else if g.saves != 1 || !g.env.Equal(wantSaved) {
							t.Errorf("%s: script saved %d times, env %v; model %v", name, g.saves, g.env.Keys(), wantSaved.Keys())
						}
						n++
					}
				}
			}
		}
	}
	if n != 80 {
		t.Fatalf("ran %d cases", n)
	}
}
