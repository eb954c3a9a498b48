package slurm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/voxflow/voxflow/stages"
)

// ProgressLine is one line of WorkDir/progress.jsonl: a stages.Update with
// the time it was made.
type ProgressLine struct {
	Time    time.Time `json:"time"`
	Phase   string    `json:"phase,omitempty"`
	Done    float64   `json:"done"`
	Total   float64   `json:"total,omitempty"`
	Unit    string    `json:"unit,omitempty"`
	Rate    float64   `json:"rate,omitempty"`
	Message string    `json:"message,omitempty"`
}

// Update converts the line back to the update it records.
func (p ProgressLine) Update() stages.Update {
	return stages.Update{Phase: p.Phase, Done: p.Done, Total: p.Total, Unit: p.Unit, Rate: p.Rate, Message: p.Message}
}

// progressWriter is the stages.Progress exec-job hands the stage. Stages may
// report every batch; on a shared filesystem that is needless traffic, so
// updates within one phase are thinned to one per interval and the newest
// held-back update is written on close.
type progressWriter struct {
	every time.Duration

	mu        sync.Mutex
	w         io.Writer
	last      time.Time
	lastPhase string
	pending   *ProgressLine
	err       error // first write error, reported on close
}

func newProgressWriter(w io.Writer, every time.Duration) *progressWriter {
	return &progressWriter{w: w, every: every}
}

// Update records u, now or later (see progressWriter).
func (p *progressWriter) Update(u stages.Update) {
	line := ProgressLine{Time: time.Now().UTC(), Phase: u.Phase, Done: u.Done, Total: u.Total, Unit: u.Unit, Rate: u.Rate, Message: u.Message}
	p.mu.Lock()
	defer p.mu.Unlock()
	finished := u.Total > 0 && u.Done >= u.Total
	if u.Phase == p.lastPhase && !finished && line.Time.Sub(p.last) < p.every {
		p.pending = &line
		return
	}
	p.write(line)
}

func (p *progressWriter) write(line ProgressLine) {
	p.pending = nil
	p.last, p.lastPhase = line.Time, line.Phase
	b, err := json.Marshal(line)
	if err == nil {
		_, err = p.w.Write(append(b, '\n'))
	}
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("write progress: %w", err)
	}
}

// flush writes the held-back update, if any, and returns the first error.
func (p *progressWriter) flush() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pending != nil {
		p.write(*p.pending)
	}
	return p.err
}

// follower reads what a process on another host appended to a file since
// the last call. It tolerates the file not existing yet.
type follower struct {
	path    string
	off     int64
	partial []byte // an incomplete last line, held until its newline arrives
}

// next returns the complete lines appended since the last call, each with
// its newline, or everything new when all is set (the writer has ended).
func (f *follower) next(all bool) ([]byte, error) {
	file, err := os.Open(f.path)
	if err != nil {
		if isNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("follow %s: %w", f.path, err)
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil {
		return nil, fmt.Errorf("follow %s: %w", f.path, err)
	}
	if st.Size() < f.off {
		// Rewritten by a new attempt: start over.
		f.off, f.partial = 0, nil
	}
	b, err := io.ReadAll(io.NewSectionReader(file, f.off, st.Size()-f.off))
	if err != nil {
		return nil, fmt.Errorf("follow %s: %w", f.path, err)
	}
	f.off += int64(len(b))
	b = append(f.partial, b...)
	f.partial = nil
	if all {
		return b, nil
	}
	i := bytes.LastIndexByte(b, '\n')
	if i < len(b)-1 {
		f.partial = append([]byte(nil), b[i+1:]...)
		b = b[:i+1]
	}
	return b, nil
}

// forwardProgress decodes progress lines and hands them to progress.
// A malformed line (a torn write seen over NFS) is skipped, not fatal:
// progress is advisory.
func forwardProgress(lines []byte, progress stages.Progress) {
	for _, ln := range bytes.Split(lines, []byte{'\n'}) {
		if len(bytes.TrimSpace(ln)) == 0 {
			continue
		}
		var p ProgressLine
		if json.Unmarshal(ln, &p) == nil {
			progress.Update(p.Update())
		}
	}
}
