// Package progress shows how far a long copy or checksum has come: a
// redrawn bar on a terminal, a plain line every few seconds in a log, or
// JSON lines for programs (`--json`).
//
// A Reporter is made for one stage with its total, fed with Update from
// the worker (sparse.Write, verify.Check take Update as their progress
// callback) and closed with Finish, which prints the final state once.
package progress

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Mode is how progress is shown.
type Mode int

const (
	// Plain prints a line every PlainEvery, for logs and pipes.
	Plain Mode = iota
	// Bar redraws one line with a bar, for a terminal.
	Bar
	// JSON prints one JSON object per line every JSONEvery.
	JSON
	// Quiet prints nothing.
	Quiet
)

// How often each mode prints. The bar redraws often enough to look live
// without costing the copy anything.
const (
	BarEvery   = 200 * time.Millisecond
	PlainEvery = 5 * time.Second
	JSONEvery  = time.Second
)

// ModeFor picks JSON when asked for, Bar when w is a terminal, else Plain.
func ModeFor(w io.Writer, jsonLines bool) Mode {
	if jsonLines {
		return JSON
	}
	if f, ok := w.(*os.File); ok {
		if _, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
			return Bar
		}
	}
	return Plain
}

// Reporter reports one stage. Its methods may be called from any
// goroutine.
type Reporter struct {
	w     io.Writer
	mode  Mode
	stage string
	total int64
	now   func() time.Time

	mu       sync.Mutex
	start    time.Time
	last     time.Time // when something was last printed
	done     int64
	finished bool
}

// New starts reporting a stage (e.g. "writing Base-2-0") of total bytes.
func New(w io.Writer, mode Mode, stage string, total int64) *Reporter {
	return newAt(w, mode, stage, total, time.Now)
}

func newAt(w io.Writer, mode Mode, stage string, total int64, now func() time.Time) *Reporter {
	t := now()
	return &Reporter{w: w, mode: mode, stage: stage, total: total, now: now, start: t, last: t}
}

// Update records that done bytes are finished and prints if it is time.
func (r *Reporter) Update(done int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return
	}
	r.done = done
	t := r.now()
	if t.Sub(r.last) < r.every() {
		return
	}
	r.last = t
	r.print(t, false)
}

// Finish prints the final state; later calls do nothing.
func (r *Reporter) Finish() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return
	}
	r.finished = true
	r.print(r.now(), true)
}

func (r *Reporter) every() time.Duration {
	switch r.mode {
	case Bar:
		return BarEvery
	case JSON:
		return JSONEvery
	}
	return PlainEvery
}

// rate is the average since the start in bytes per second; an average
// over the whole stage does not jump about when the page cache fills.
func (r *Reporter) rate(t time.Time) float64 {
	el := t.Sub(r.start).Seconds()
	if el <= 0 {
		return 0
	}
	return float64(r.done) / el
}

func (r *Reporter) print(t time.Time, final bool) {
	rate := r.rate(t)
	switch r.mode {
	case Quiet:
	case JSON:
		line, _ := json.Marshal(struct {
			Event string `json:"event"`
			Stage string `json:"stage,omitempty"`
			Done  int64  `json:"done"`
			Total int64  `json:"total"`
			Rate  int64  `json:"rate"`
			Final bool   `json:"final,omitempty"`
		}{"progress", r.stage, r.done, r.total, int64(rate), final})
		fmt.Fprintf(r.w, "%s\n", line)
	case Bar:
		end := ""
		if final {
			end = "\n"
		}
		// \r and clear-to-end-of-line redraw in place; the line stays
		// under 80 columns for a stage name of up to 20.
		fmt.Fprintf(r.w, "\r\x1b[K%s %s %s%s", trim(r.stage, 20), bar(r.done, r.total, 20), r.figures(t, rate), end)
	default:
		fmt.Fprintf(r.w, "%s: %s\n", r.stage, r.figures(t, rate))
	}
}

// figures renders "1.2 GiB/2.0 GiB 60% 85.0 MiB/s ETA 0:10".
func (r *Reporter) figures(t time.Time, rate float64) string {
	s := Bytes(r.done) + "/" + Bytes(r.total)
	if r.total > 0 {
		s += fmt.Sprintf(" %d%%", r.done*100/r.total)
	}
	s += " " + Bytes(int64(rate)) + "/s"
	if r.done >= r.total {
		return s + " in " + clock(t.Sub(r.start))
	}
	if rate > 0 {
		s += " ETA " + clock(time.Duration(float64(r.total-r.done)/rate*float64(time.Second)))
	}
	return s
}

func bar(done, total int64, width int) string {
	fill := width
	if total > 0 {
		fill = int(min(done, total) * int64(width) / total)
	}
	b := make([]byte, width+2)
	b[0], b[width+1] = '[', ']'
	for i := range width {
		switch {
		case i < fill:
			b[i+1] = '='
		case i == fill:
			b[i+1] = '>'
		default:
			b[i+1] = ' '
		}
	}
	return string(b)
}

func trim(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// clock renders a duration as m:ss or h:mm:ss.
func clock(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// Bytes renders n in binary units with one decimal ("1.5 GiB").
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n)/unit, 0
	for f >= unit && i < 5 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, "KMGTPE"[i])
}
