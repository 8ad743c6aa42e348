package migrate

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/imgbase/imgbase/internal/atomicfile"
)

// ReportFile is the name Save gives the JSON report; the text rendering is
// saved beside it with the extension .txt.
const ReportFile = "migrate-report.json"

// Report says what the merge did with each path that differed anywhere.
// Paths are absolute as seen from inside the layers; a directory ends in "/".
type Report struct {
	// Taken: the new image's version, where the admin had changed nothing
	// (or made the same change as the image).
	Taken []string `json:"taken"`
	// Kept: the admin's changes, copied over the new image's unchanged version.
	Kept []string `json:"kept"`
	// Added: paths the admin created, copied in.
	Added []string `json:"added"`
	// Deleted: paths the admin removed, removed from the new layer too.
	Deleted []string `json:"deleted"`
	// Conflicts: changed on both sides; the admin's was kept.
	Conflicts []Conflict `json:"conflicts"`
	// Accounts: users and groups added, changed, deleted or clashing.
	Accounts []AccountChange `json:"accounts"`
	// Remapped: ids the new image gave to an existing name; the admin's
	// files copied across were given the new id.
	Remapped []Remap   `json:"remapped"`
	Finished time.Time `json:"finished"`
}

// Conflict is one path changed by the admin and by the new image.
type Conflict struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
	// ImageCopy is where the new image's version was put, if anywhere.
	ImageCopy string `json:"image_copy,omitempty"`
}

// AccountChange is one user or group entry the merge did not simply take
// from the new image.
type AccountChange struct {
	File   string `json:"file"`
	Name   string `json:"name"`
	Change string `json:"change"` // added, kept, deleted, conflict, clash
	Detail string `json:"detail,omitempty"`
}

// Remap is one uid or gid changed on copied files.
type Remap struct {
	ID   string `json:"id"` // "uid" or "gid"
	From uint32 `json:"from"`
	To   uint32 `json:"to"`
}

// Conflicted reports whether anything needs the admin's attention.
func (r *Report) Conflicted() bool { return len(r.Conflicts) > 0 }

// JSON renders the report; empty lists are [] rather than null.
func (r *Report) JSON() ([]byte, error) {
	c := *r
	for _, l := range []*[]string{&c.Taken, &c.Kept, &c.Added, &c.Deleted} {
		if *l == nil {
			*l = []string{}
		}
	}
	if c.Conflicts == nil {
		c.Conflicts = []Conflict{}
	}
	if c.Accounts == nil {
		c.Accounts = []AccountChange{}
	}
	if c.Remapped == nil {
		c.Remapped = []Remap{}
	}
	b, err := json.MarshalIndent(&c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("cannot render the migration report: %w", err)
	}
	return append(b, '\n'), nil
}

// Text renders the report for people: conflicts first, then the rest.
func (r *Report) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "configuration carried over: %d taken from the new image, %d kept, %d added, %d deleted, %d conflicts\n",
		len(r.Taken), len(r.Kept), len(r.Added), len(r.Deleted), len(r.Conflicts))
	if len(r.Conflicts) > 0 {
		b.WriteString("conflicts (the admin's version was kept):\n")
		for _, c := range r.Conflicts {
			fmt.Fprintf(&b, "  %s: %s", c.Path, c.Reason)
			if c.ImageCopy != "" {
				fmt.Fprintf(&b, "; the new image's is %s", c.ImageCopy)
			}
			b.WriteByte('\n')
		}
	}
	list := func(title string, paths []string) {
		if len(paths) == 0 {
			return
		}
		b.WriteString(title + ":\n")
		for _, p := range paths {
			b.WriteString("  " + p + "\n")
		}
	}
	list("kept (changed by the admin)", r.Kept)
	list("added by the admin", r.Added)
	list("deleted by the admin", r.Deleted)
	list("taken from the new image", r.Taken)
	if len(r.Accounts) > 0 {
		b.WriteString("users and groups:\n")
		for _, a := range r.Accounts {
			fmt.Fprintf(&b, "  %s %s: %s", a.File, a.Name, a.Change)
			if a.Detail != "" {
				b.WriteString(" (" + a.Detail + ")")
			}
			b.WriteByte('\n')
		}
	}
	for _, rm := range r.Remapped {
		fmt.Fprintf(&b, "%s %d is %d in the new image: carried files owned by it were changed\n", rm.ID, rm.From, rm.To)
	}
	return b.String()
}

// Save writes the report atomically as dir/migrate-report.json and
// dir/migrate-report.txt, creating dir. The caller resolves dir (normally
// /var/lib/imgbase inside the new layer).
func (r *Report) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot save the migration report: %w", err)
	}
	js, err := r.JSON()
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(dir, ReportFile), js, 0o644); err != nil {
		return fmt.Errorf("cannot save the migration report: %w", err)
	}
	txt := filepath.Join(dir, strings.TrimSuffix(ReportFile, ".json")+".txt")
	if err := atomicfile.Write(txt, []byte(r.Text()), 0o644); err != nil {
		return fmt.Errorf("cannot save the migration report: %w", err)
	}
	return nil
}
