package logfmt

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestSentences(t *testing.T) {
	var b bytes.Buffer
	log := slog.New(New(&b, "imgbase", slog.LevelInfo))
	log.Warn("the image is neither checksummed nor signed", "image", "/var/tmp/a.img")
	log.Warn("cannot read grubenv; writing an empty one", "path", "/boot/grub/grubenv", "err", errors.New("short file\nsecond line"))
	log.Warn("cannot reload systemd after changing /etc/fstab; run 'systemctl daemon-reload'", "err", errors.New("exit status 1"))
	log.Info("running hook", "phase", "post-update", "hook", "/h/10-x", "args", []string{"Base-2-0", "Base-2-0+1"})
	log.With("tx", "update").Info("committed")
	log.WithGroup("g").Info("grouped", "a", "x", "b", 2)
	log.Info("configuration carried over", "taken", 3, "kept", 1)
	log.Error("imgbase failed", "err", errors.New("boom"))
	log.Debug("not shown", "cmd", "lvs")
	want := strings.Join([]string{
		"imgbase: warning: the image is neither checksummed nor signed: /var/tmp/a.img",
		"imgbase: warning: cannot read grubenv: /boot/grub/grubenv (short file; second line); writing an empty one",
		"imgbase: warning: cannot reload systemd after changing /etc/fstab (exit status 1); run 'systemctl daemon-reload'",
		"imgbase: running hook: post-update (hook /h/10-x, args Base-2-0 Base-2-0+1)",
		"imgbase: committed: update",
		"imgbase: grouped: x (g.b 2)",
		"imgbase: configuration carried over (taken 3, kept 1)",
		"imgbase: error: imgbase failed (boom)",
	}, "\n") + "\n"
	if got := b.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestLevel(t *testing.T) {
	var b bytes.Buffer
	h := New(&b, "imgbase", slog.LevelWarn)
	log := slog.New(h)
	log.Info("a note")
	log.Warn("a warning")
	if b.String() != "imgbase: warning: a warning\n" {
		t.Errorf("got %q", b.String())
	}
	dbg := slog.New(New(&b, "x", slog.LevelDebug))
	b.Reset()
	dbg.Debug("ran", "cmd", "lvs --noheadings")
	if b.String() != "x: debug: ran: lvs --noheadings\n" {
		t.Errorf("got %q", b.String())
	}
}
