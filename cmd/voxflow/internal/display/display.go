// Package display draws a run's progress on the terminal: Plain writes one
// log line per event, for logs and pipes; TTY redraws a live block with a
// line per running instance. Both implement engine.Display.
package display

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/voxflow/voxflow/engine"
	"github.com/voxflow/voxflow/stages"
)

// Both displays are what Runner reports to.
var (
	_ engine.Display = (*Plain)(nil)
	_ engine.Display = (*TTY)(nil)
)

// counts tallies instance outcomes for the totals line. Interrupted
// instances (Ctrl-C) are counted apart from failed ones, so the totals line
// and the run's summary line agree.
type counts struct{ done, cached, running, failed, interrupted, submitted, notChosen int }

// finish counts an instance's end in the tally its status belongs to.
func (c *counts) finish(status string) {
	c.running--
	switch status {
	case engine.StatusSucceeded:
		c.done++
	case engine.StatusSubmitted:
		c.submitted++
	case engine.StatusInterrupted:
		c.interrupted++
	case engine.StatusNotChosen:
		c.notChosen++
	default:
		c.failed++
	}
}

func (c *counts) String() string {
	s := fmt.Sprintf("%d done, %d cached, %d running, %d failed", c.done, c.cached, c.running, c.failed)
	if c.interrupted > 0 {
		s += fmt.Sprintf(", %d interrupted", c.interrupted)
	}
	if c.submitted > 0 {
		s += fmt.Sprintf(", %d submitted", c.submitted)
	}
	if c.notChosen > 0 {
		s += fmt.Sprintf(", %d not chosen", c.notChosen)
	}
	return s
}

// rateTracker derives rate and ETA from successive progress updates when
// the stage reports none.
type rateTracker struct {
	phase     string
	startDone float64
	start     time.Time
}

func (r *rateTracker) observe(u stages.Update, now time.Time) (rate float64, eta time.Duration) {
	if u.Phase != r.phase || u.Done < r.startDone {
		*r = rateTracker{phase: u.Phase, startDone: u.Done, start: now}
	}
	rate = u.Rate
	if rate == 0 {
		if el := now.Sub(r.start).Seconds(); el > 0.5 {
			rate = (u.Done - r.startDone) / el
		}
	}
	if rate > 0 && u.Total > u.Done {
		eta = time.Duration((u.Total - u.Done) / rate * float64(time.Second))
	}
	return rate, eta
}

// formatUpdate renders one progress line's body.
func formatUpdate(u stages.Update, rate float64, eta time.Duration) string {
	var b strings.Builder
	if u.Phase != "" {
		b.WriteString(u.Phase)
	}
	if u.Total > 0 {
		fmt.Fprintf(&b, " %.0f/%.0f", u.Done, u.Total)
	} else if u.Done > 0 {
		fmt.Fprintf(&b, " %.0f", u.Done)
	}
	if u.Unit != "" && (u.Total > 0 || u.Done > 0) {
		b.WriteString(" " + u.Unit)
	}
	if rate > 0 {
		unit := u.Unit
		if unit == "" {
			unit = "it"
		}
		fmt.Fprintf(&b, ", %.1f %s/s", rate, unit)
	}
	if eta > 0 {
		fmt.Fprintf(&b, ", ETA %s", eta.Round(time.Second))
	}
	if u.Message != "" {
		b.WriteString(", " + u.Message)
	}
	return strings.TrimSpace(b.String())
}

// Plain writes one log line per event, for logs and pipes. Progress
// lines are throttled per instance.
type Plain struct {
	W        io.Writer
	Interval time.Duration // minimum time between progress lines of one instance; 0 = 5s

	mu    sync.Mutex
	last  map[string]time.Time
	rates map[string]*rateTracker
	c     counts
}

func (p *Plain) logf(format string, args ...any) {
	fmt.Fprintf(p.W, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// Cached records a reused instance.
func (p *Plain) Cached(inst string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.c.cached++
	p.logf("cached   %s", inst)
}

// Started records a started instance.
func (p *Plain) Started(inst string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.c.running++
	p.logf("start    %s", inst)
}

// Waiting records an instance waiting on something outside this run.
func (p *Plain) Waiting(inst, why string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.logf("waiting  %s: %s", inst, why)
}

// Progress records a progress update, at most one line per Interval.
func (p *Plain) Progress(inst string, u stages.Update) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last == nil {
		p.last, p.rates = map[string]time.Time{}, map[string]*rateTracker{}
	}
	rt := p.rates[inst]
	if rt == nil {
		rt = &rateTracker{}
		p.rates[inst] = rt
	}
	now := time.Now()
	rate, eta := rt.observe(u, now)
	iv := p.Interval
	if iv == 0 {
		iv = 5 * time.Second
	}
	if now.Sub(p.last[inst]) < iv && !(u.Total > 0 && u.Done >= u.Total) {
		return
	}
	p.last[inst] = now
	p.logf("progress %s: %s", inst, formatUpdate(u, rate, eta))
}

// Finished records an instance's end.
func (p *Plain) Finished(inst, status string, d time.Duration, err error, tail []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.c.finish(status)
	switch status {
	case engine.StatusSucceeded:
		p.logf("done     %s (%s)", inst, d.Round(time.Millisecond))
		return
	case engine.StatusSubmitted:
		p.logf("submitted %s: %v", inst, err)
		return
	case engine.StatusNotChosen:
		p.logf("skip     %s: %v", inst, err)
		return
	}
	p.logf("%-8s %s (%s): %v", status, inst, d.Round(time.Millisecond), err)
	for _, l := range tail {
		fmt.Fprintf(p.W, "    | %s\n", l)
	}
}

// Close prints the totals.
func (p *Plain) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.logf("totals   %s", &p.c)
}

// TTY redraws a live block on a terminal: one line per running
// instance with its own progress, plus a totals line. Finished instances
// scroll above the block.
type TTY struct {
	W     io.Writer
	Width int // terminal width; 0 = 100

	mu      sync.Mutex
	running map[string]*liveLine
	c       counts
	drawn   int
	stop    chan struct{}
	stopped chan struct{}
}

type liveLine struct {
	start time.Time
	text  string
	rt    rateTracker
}

// NewTTY starts a display that redraws every 200 ms.
func NewTTY(w io.Writer, width int) *TTY {
	d := &TTY{W: w, Width: width, running: map[string]*liveLine{}, stop: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(d.stopped)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-d.stop:
				return
			case <-t.C:
				d.mu.Lock()
				d.redraw()
				d.mu.Unlock()
			}
		}
	}()
	return d
}

// clear erases the live block; callers hold mu.
func (d *TTY) clear() {
	for i := 0; i < d.drawn; i++ {
		fmt.Fprint(d.W, "\x1b[1A\x1b[2K")
	}
	d.drawn = 0
}

// redraw repaints the live block; callers hold mu.
func (d *TTY) redraw() {
	d.clear()
	names := make([]string, 0, len(d.running))
	for n := range d.running {
		names = append(names, n)
	}
	sort.Strings(names)
	width := d.Width
	if width <= 0 {
		width = 100
	}
	for _, n := range names {
		l := d.running[n]
		line := fmt.Sprintf("  ▶ %s  %s  [%s]", n, l.text, time.Since(l.start).Round(time.Second))
		if r := []rune(line); len(r) > width-1 {
			line = string(r[:width-2]) + "…"
		}
		fmt.Fprintln(d.W, line)
		d.drawn++
	}
	fmt.Fprintf(d.W, "  %s\n", &d.c)
	d.drawn++
}

// printAbove prints a permanent line above the live block; callers hold mu.
func (d *TTY) printAbove(format string, args ...any) {
	d.clear()
	fmt.Fprintf(d.W, format+"\n", args...)
	d.redraw()
}

// Cached records a reused instance. Cached instances are counted, not
// listed, so a mostly-cached 10,000-stage rerun stays readable.
func (d *TTY) Cached(string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.c.cached++
}

// Started adds a live line.
func (d *TTY) Started(inst string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.c.running++
	d.running[inst] = &liveLine{start: time.Now(), text: "running"}
}

// Waiting shows why a started instance is not running yet.
func (d *TTY) Waiting(inst, why string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if l := d.running[inst]; l != nil {
		l.text = "waiting: " + why
	}
}

// Progress updates an instance's live line.
func (d *TTY) Progress(inst string, u stages.Update) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if l := d.running[inst]; l != nil {
		rate, eta := l.rt.observe(u, time.Now())
		l.text = formatUpdate(u, rate, eta)
	}
}

// Finished removes the live line and prints the outcome above the block.
func (d *TTY) Finished(inst, status string, dur time.Duration, err error, tail []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.running, inst)
	d.c.finish(status)
	switch status {
	case engine.StatusSucceeded:
		d.printAbove("  ✔ %s (%s)", inst, dur.Round(time.Millisecond))
		return
	case engine.StatusSubmitted:
		d.printAbove("  ⇢ %s %v", inst, err)
		return
	case engine.StatusNotChosen:
		d.printAbove("  · %s %v", inst, err)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  ✘ %s %s (%s): %v", inst, status, dur.Round(time.Millisecond), err)
	for _, l := range tail {
		fmt.Fprintf(&b, "\n    | %s", l)
	}
	d.printAbove("%s", b.String())
}

// Close stops redrawing and leaves the final totals on screen.
func (d *TTY) Close() {
	close(d.stop)
	<-d.stopped
	d.mu.Lock()
	defer d.mu.Unlock()
	d.redraw()
}
