package display

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/voxflow/voxflow/engine"
	"github.com/voxflow/voxflow/stages"
)

func TestFormatUpdateShowsRateAndETA(t *testing.T) {
	var rt rateTracker
	t0 := time.Unix(1000, 0)
	rt.observe(stages.Update{Phase: "epoch 3/20", Done: 0, Total: 1000, Unit: "img"}, t0)
	rate, eta := rt.observe(stages.Update{Phase: "epoch 3/20", Done: 400, Total: 1000, Unit: "img"}, t0.Add(10*time.Second))
	if rate != 40 || eta != 15*time.Second {
		t.Fatalf("rate %v eta %v, want 40 img/s and 15s", rate, eta)
	}
	got := formatUpdate(stages.Update{Phase: "epoch 3/20", Done: 400, Total: 1000, Unit: "img", Message: "loss 0.41"}, rate, eta)
	if got != "epoch 3/20 400/1000 img, 40.0 img/s, ETA 15s, loss 0.41" {
		t.Fatalf("formatUpdate = %q", got)
	}
	// A new phase restarts the rate.
	if r, _ := rt.observe(stages.Update{Phase: "epoch 4/20", Done: 10, Total: 1000}, t0.Add(11*time.Second)); r != 0 {
		t.Fatalf("rate carried over a phase change: %v", r)
	}
}

func TestTTYDisplayRedrawsLiveLines(t *testing.T) {
	var buf bytes.Buffer
	d := NewTTY(&buf, 80)
	d.Started("tune_cl[subj01,FFA-1]")
	d.Progress("tune_cl[subj01,FFA-1]", stages.Update{Phase: "epoch 2/5", Done: 10, Total: 100, Unit: "img", Rate: 5})
	d.Cached("data")
	d.Started("bad")
	d.Finished("bad", engine.StatusFailed, time.Second, errors.New("exit 3"), []string{"last line"})
	time.Sleep(300 * time.Millisecond) // one redraw tick
	d.Finished("tune_cl[subj01,FFA-1]", engine.StatusSucceeded, 2*time.Second, nil, nil)
	d.Close()
	out := buf.String()
	for _, want := range []string{"epoch 2/5 10/100 img, 5.0 img/s, ETA 18s", "✘ bad failed", "| last line", "✔ tune_cl[subj01,FFA-1]", "1 done, 1 cached, 0 running, 1 failed", "\x1b[1A\x1b[2K"} {
		if !strings.Contains(out, want) {
			t.Errorf("display lacks %q:\n%q", want, out)
		}
	}
}

// Ctrl-C ends running instances as interrupted: the totals line counts them
// so, not as failed, to agree with the run's summary line.
func TestDisplaysCountInterruptedApart(t *testing.T) {
	var plain, tty bytes.Buffer
	for _, d := range []engine.Display{&Plain{W: &plain}, NewTTY(&tty, 80)} {
		d.Started("a")
		d.Started("b")
		d.Finished("a", engine.StatusInterrupted, time.Second, errors.New("context canceled"), nil)
		d.Finished("b", engine.StatusFailed, time.Second, errors.New("exit 1"), nil)
		d.Close()
	}
	for name, out := range map[string]string{"plain": plain.String(), "tty": tty.String()} {
		if !strings.Contains(out, "0 done, 0 cached, 0 running, 1 failed, 1 interrupted") {
			t.Errorf("%s totals do not count the interrupted instance apart:\n%s", name, out)
		}
	}
}

// Plain keeps logs short: between two lines of one instance's progress at
// least Interval passes, except that the update completing a phase is
// always shown.
func TestPlainThrottlesProgress(t *testing.T) {
	var buf bytes.Buffer
	p := &Plain{W: &buf, Interval: time.Hour}
	p.Started("fit")
	for i := 1; i <= 5; i++ {
		p.Progress("fit", stages.Update{Phase: "fold", Done: float64(i), Total: 10})
	}
	p.Progress("other", stages.Update{Phase: "fold", Done: 1, Total: 10})
	p.Progress("fit", stages.Update{Phase: "fold", Done: 10, Total: 10})
	p.Finished("fit", engine.StatusSucceeded, 1500*time.Millisecond, nil, nil)
	p.Close()
	out := buf.String()
	if n := strings.Count(out, "progress fit: "); n != 2 {
		t.Errorf("%d progress lines for fit, want 2 (the first and the last):\n%s", n, out)
	}
	for _, want := range []string{"progress fit: fold 1/10", "progress fit: fold 10/10", "progress other: fold 1/10", "done     fit (1.5s)", "totals   1 done, 0 cached, 0 running, 0 failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("plain display lacks %q:\n%s", want, out)
		}
	}
}
