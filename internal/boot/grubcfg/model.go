package grubcfg

import "github.com/imgbase/imgbase/internal/boot/grubenv"

// Select is the Go model of Script: given grubenv as GRUB loads it (and
// whether grub.cfg already consumed a one-shot entry), it returns the
// entry GRUB boots and grubenv after the script's save_env, or saved nil
// when the script writes nothing. With bootOnce (grub.cfg's header already
// consumed a one-shot entry) entry is "": the header's choice stands. The crash test drives imgbase through
// every power-loss point with this model; the interpreter test checks it
// against Script itself.
func Select(env *grubenv.Env, bootOnce bool) (entry string, saved *grubenv.Env) {
	if next := env.Get(NextEntry); next != "" {
		saved = env.Clone()
		saved.Set(NextEntry, "")
		return next, saved
	}
	if bootOnce {
		return "", nil
	}
	switch {
	case env.Get(BootStatus) == StatusTry && env.Get(TryEntry) != "":
		saved = env.Clone()
		saved.Set(BootStatus, StatusTrying)
		return env.Get(TryEntry), saved
	case env.Get(BootStatus) == StatusTrying:
		saved = env.Clone()
		saved.Set(BootStatus, StatusFailed)
		return env.Get(SavedEntry), saved
	}
	return env.Get(SavedEntry), nil
}
