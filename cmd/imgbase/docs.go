package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cpuguy83/go-md2man/v2/md2man"
	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/imgbase/imgbase/internal/atomicfile"
)

// docsDate is the man pages' date when SOURCE_DATE_EPOCH is not set: a
// fixed one, so that the same sources give the same pages.
var docsDate = time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)

// docsCommand writes the man pages and the shell completions that the
// packages install; it is hidden, a build step rather than an admin's verb.
func (a *app) docsCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "__docs OUTDIR",
		Short:  "Write the man pages (OUTDIR/man8) and shell completions (OUTDIR/completions)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			date, err := manDate(os.Getenv("SOURCE_DATE_EPOCH"))
			if err != nil {
				return err
			}
			return writeDocs(cmd.Root(), args[0], date)
		},
	}
}

func manDate(epoch string) (time.Time, error) {
	if epoch == "" {
		return docsDate, nil
	}
	n, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return time.Time{}, usagef("cannot read SOURCE_DATE_EPOCH %q: want seconds since 1970", epoch)
	}
	return time.Unix(n, 0).UTC(), nil
}

func writeDocs(root *cobra.Command, out string, date time.Time) error {
	files := map[string][]byte{}
	cmds := []*cobra.Command{root}
	for _, c := range root.Commands() {
		if c.IsAvailableCommand() && !c.IsAdditionalHelpTopicCommand() {
			cmds = append(cmds, c)
		}
	}
	for _, c := range cmds {
		page, err := manPage(c, date)
		if err != nil {
			return err
		}
		files[filepath.Join("man8", strings.ReplaceAll(c.CommandPath(), " ", "-")+".8")] = page
	}
	for path, gen := range map[string]func(*bytes.Buffer) error{
		"completions/bash/imgbase":      func(b *bytes.Buffer) error { return root.GenBashCompletionV2(b, true) },
		"completions/zsh/_imgbase":      func(b *bytes.Buffer) error { return root.GenZshCompletion(b) },
		"completions/fish/imgbase.fish": func(b *bytes.Buffer) error { return root.GenFishCompletion(b, true) },
	} {
		var b bytes.Buffer
		if err := gen(&b); err != nil {
			return fmt.Errorf("cannot generate %s: %w", path, err)
		}
		files[path] = b.Bytes()
	}
	for rel, data := range files {
		p := filepath.Join(out, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("cannot write %s: %w", p, err)
		}
		if err := atomicfile.Write(p, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// manPage is cobra's page for c (synopsis, description, options,
// examples) with the sections cobra does not know: EXIT STATUS, FILES and
// the other manuals worth reading.
func manPage(c *cobra.Command, date time.Time) ([]byte, error) {
	c.DisableAutoGenTag = true // its HISTORY section would only say "generated"
	var b bytes.Buffer
	err := doc.GenMan(c, &doc.GenManHeader{
		Section: "8",
		Date:    &date,
		Source:  "imgbase " + currentBuild().Version,
		Manual:  "System Administration",
	}, &b)
	if err != nil {
		return nil, fmt.Errorf("cannot generate the man page of %s: %w", c.CommandPath(), err)
	}
	page := b.String()
	const seeAlso = ".SH SEE ALSO\n"
	i := strings.LastIndex(page, seeAlso)
	if i < 0 {
		return nil, fmt.Errorf("cannot find SEE ALSO in the man page of %s", c.CommandPath())
	}
	extra := md2man.Render([]byte(manExtra(c.Name())))
	extra = bytes.TrimPrefix(extra, []byte(".nh\n"))
	also := strings.TrimRight(page[i+len(seeAlso):], "\n") + ", \\fBlvmthin(7)\\fP, \\fBlvm(8)\\fP\n"
	return []byte(page[:i] + string(extra) + seeAlso + also), nil
}

// manFile is a file an imgbase command reads or writes, and the verbs for
// which it matters (none: every page).
type manFile struct {
	path, what string
	verbs      []string
}

var manFiles = []manFile{
	{"/etc/imgbased.conf", "The configuration (INI): `[update] images_to_keep`, how many bases `update` keeps.", nil},
	{"/etc/imgbased.conf.d/*.conf", "Further configuration, read in lexical order after /etc/imgbased.conf; later files override earlier ones.", nil},
	{"/var/log/imgbased.log", "The trace of every command that changes the system: its command line, each tool run with exit status and duration, and how it ended.",
		[]string{"imgbase", "layout", "base", "layer", "update", "boot", "rollback", "recover", "volume"}},
	{"/run/imgbase.lock", "The lock held by commands that change the system; a second one waits `--lock-timeout`, then fails naming the holder.",
		[]string{"imgbase", "layout", "base", "layer", "update", "boot", "rollback", "recover", "volume"}},
	{"/var/lib/imgbase/journal.json", "The journal of an update in progress; `imgbase recover` finishes or undoes what it records.",
		[]string{"imgbase", "update", "recover"}},
	{"/etc/imgbased/keys/*.pub", "Trusted public keys: minisign for image files, PEM ECDSA P-256 (cosign) for OCI images; when there is one of either kind, every image must be signed by a key of its kind, unless `--insecure`.",
		[]string{"imgbase", "base", "update"}},
	{"/etc/imgbased/hooks.d/", "Hooks run before (`pre-EVENT/`) and after (`post-EVENT/`) base-add, base-remove, layer-add, layer-remove and update.",
		[]string{"imgbase", "base", "layer", "update"}},
	{"/boot/loader/entries/", "One boot entry per layer; the kernel and initramfs are in /boot/LAYER/. With systemd-boot both are on the partition it reads: XBOOTLDR at /boot, else the ESP (/efi, /boot or /boot/efi), with loader/loader.conf on the ESP.",
		[]string{"imgbase", "layer", "update", "boot", "rollback", "check", "recover"}},
	{"/sys/firmware/efi/efivars/LoaderEntryOneShot-*", "With systemd-boot, the entry the next boot boots once (a trial, `boot --next`): the Boot Loader Interface's variable, written as `bootctl set-oneshot` writes it.",
		[]string{"layer", "update", "boot"}},
}

// manExtra is the markdown of the EXIT STATUS and FILES sections of verb's page.
func manExtra(verb string) string {
	var b strings.Builder
	// "##": md2man makes a fragment's first "#" the page title.
	b.WriteString("## EXIT STATUS\n")
	b.WriteString("**0**\n: success\n\n")
	b.WriteString("**1**\n: the command failed or was refused; the message on stderr says why and what to do\n\n")
	b.WriteString("**2**\n: bad usage: an unknown flag or command, a missing or extra argument\n\n")
	b.WriteString("## FILES\n")
	for _, f := range manFiles {
		if f.verbs != nil && !contains(f.verbs, verb) {
			continue
		}
		fmt.Fprintf(&b, "*%s*\n: %s\n\n", strings.ReplaceAll(f.path, "*", `\*`), f.what)
	}
	return b.String()
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
