package engine

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/voxflow/voxflow/stages"
)

// Display shows a run's progress. Implementations are safe for concurrent
// use: stages report from their own goroutines.
type Display interface {
	Cached(instance string)
	Started(instance string)
	Waiting(instance, why string)
	Progress(instance string, u stages.Update)
	Finished(instance string, status string, d time.Duration, err error, logTail []string)
	Close()
}

// counts tallies instance outcomes for the totals line. Interrupted
// instances (Ctrl-C) are counted apart from failed ones, so the totals line
// and the run's summary line agree.
type counts struct{ done, cached, running, failed, interrupted, submitted, notChosen int }

// finish counts an instance's end in the tally its status belongs to.
func (c *counts) finish(status string) {
	c.running--
	switch status {
	case StatusSucceeded:
		c.done++
	case StatusSubmitted:
		c.submitted++
	case StatusInterrupted:
		c.interrupted++
	case StatusNotChosen:
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

// PlainDisplay writes one log line per event, for logs and pipes. Progress
// lines are throttled per instance.
type PlainDisplay struct {
	W        io.Writer
	Interval time.Duration // minimum time between progress lines of one instance; 0 = 5s

	mu    sync.Mutex
	last  map[string]time.Time
	rates map[string]*rateTracker
	c     counts
}

func (p *PlainDisplay) logf(format string, args ...any) {
	fmt.Fprintf(p.W, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// Cached records a reused instance.
func (p *PlainDisplay) Cached(inst string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.c.cached++
	p.logf("cached   %s", inst)
}

// Started records a started instance.
func (p *PlainDisplay) Started(inst string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.c.running++
	p.logf("start    %s", inst)
}

// Waiting records an instance waiting on something outside this run.
func (p *PlainDisplay) Waiting(inst, why string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.logf("waiting  %s: %s", inst, why)
}

// Progress records a progress update, at most one line per Interval.
func (p *PlainDisplay) Progress(inst string, u stages.Update) {
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
func (p *PlainDisplay) Finished(inst, status string, d time.Duration, err error, tail []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.c.finish(status)
	switch status {
	case StatusSucceeded:
		p.logf("done     %s (%s)", inst, d.Round(time.Millisecond))
		return
	case StatusSubmitted:
		p.logf("submitted %s: %v", inst, err)
		return
	case StatusNotChosen:
		p.logf("skip     %s: %v", inst, err)
		return
	}
	p.logf("%-8s %s (%s): %v", status, inst, d.Round(time.Millisecond), err)
	for _, l := range tail {
		fmt.Fprintf(p.W, "    | %s\n", l)
	}
}

// Close prints the totals.
func (p *PlainDisplay) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.logf("totals   %s", &p.c)
}

// TTYDisplay redraws a live block on a terminal: one line per running
// instance with its own progress, plus a totals line. Finished instances
// scroll above the block.
type TTYDisplay struct {
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

// NewTTYDisplay starts a display that redraws every 200 ms.
func NewTTYDisplay(w io.Writer, width int) *TTYDisplay {
	d := &TTYDisplay{W: w, Width: width, running: map[string]*liveLine{}, stop: make(chan struct{}), stopped: make(chan struct{})}
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
func (d *TTYDisplay) clear() {
	for i := 0; i < d.drawn; i++ {
		fmt.Fprint(d.W, "\x1b[1A\x1b[2K")
	}
	d.drawn = 0
}

// redraw repaints the live block; callers hold mu.
func (d *TTYDisplay) redraw() {
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
func (d *TTYDisplay) printAbove(format string, args ...any) {
	d.clear()
	fmt.Fprintf(d.W, format+"\n", args...)
	d.redraw()
}

// Cached records a reused instance. Cached instances are counted, not
// listed, so a mostly-cached 10,000-stage rerun stays readable.
func (d *TTYDisplay) Cached(string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.c.cached++
}

// Started adds a live line.
func (d *TTYDisplay) Started(inst string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.c.running++
	d.running[inst] = &liveLine{start: time.Now(), text: "running"}
}

// Waiting shows why a started instance is not running yet.
func (d *TTYDisplay) Waiting(inst, why string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if l := d.running[inst]; l != nil {
		l.text = "waiting: " + why
	}
}

// Progress updates an instance's live line.
func (d *TTYDisplay) Progress(inst string, u stages.Update) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if l := d.running[inst]; l != nil {
		rate, eta := l.rt.observe(u, time.Now())
		l.text = formatUpdate(u, rate, eta)
	}
}

// Finished removes the live line and prints the outcome above the block.
func (d *TTYDisplay) Finished(inst, status string, dur time.Duration, err error, tail []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.running, inst)
	d.c.finish(status)
	switch status {
	case StatusSucceeded:
		d.printAbove("  ✔ %s (%s)", inst, dur.Round(time.Millisecond))
		return
	case StatusSubmitted:
		d.printAbove("  ⇢ %s %v", inst, err)
		return
	case StatusNotChosen:
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
func (d *TTYDisplay) Close() {
	close(d.stop)
	<-d.stopped
	d.mu.Lock()
	defer d.mu.Unlock()
	d.redraw()
}
