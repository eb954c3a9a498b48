package plugins

import (
	"bytes"
	"io"
	"strings"
	"sync"
)

const (
	// tailKeep is how many stderr lines a Client remembers.
	tailKeep = 200
	// tailShow is how many of them a fault report shows.
	tailShow = 20
)

// stderrTail collects a plugin's stderr as lines: it keeps the last tailKeep
// lines for fault reports and copies each line to the logs of the runs in
// flight, so output a stage writes to os.Stderr (or a subprocess's) lands in
// the instance's log. With several runs in one process each run's log gets
// every line, since stderr cannot be attributed.
type stderrTail struct {
	mu    sync.Mutex
	lines []string
	logs  map[*syncWriter]struct{}
}

func newStderrTail() *stderrTail {
	return &stderrTail{logs: map[*syncWriter]struct{}{}}
}

// source returns a writer for one stream (the process's fd 2, or go-plugin's
// forwarded os.Stderr); each keeps its own partial line so that two streams
// never splice into one line.
func (t *stderrTail) source() io.Writer { return &lineSource{t: t} }

func (t *stderrTail) addLine(line string) {
	t.mu.Lock()
	t.lines = append(t.lines, line)
	if len(t.lines) > 2*tailKeep {
		t.lines = append(t.lines[:0], t.lines[len(t.lines)-tailKeep:]...)
	}
	// Writing under the lock means that once detach returns, this run's log
	// is never written again: the engine may close it when Run returns.
	defer t.mu.Unlock()
	for w := range t.logs {
		_, _ = io.WriteString(w, line+"\n")
	}
}

func (t *stderrTail) attach(w *syncWriter) {
	t.mu.Lock()
	t.logs[w] = struct{}{}
	t.mu.Unlock()
}

func (t *stderrTail) detach(w *syncWriter) {
	t.mu.Lock()
	delete(t.logs, w)
	t.mu.Unlock()
}

// tail returns the last tailShow lines. When a Go panic or fatal error
// starts earlier than that, the report starts at it instead (up to twice as
// many lines): the first line of a crash is the one that explains it.
func (t *stderrTail) tail() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := t.lines
	if len(lines) > tailKeep {
		lines = lines[len(lines)-tailKeep:]
	}
	start := max(0, len(lines)-tailShow)
	for i := len(lines) - 1; i >= 0 && i >= len(lines)-2*tailShow; i-- {
		if strings.HasPrefix(lines[i], "panic: ") || strings.HasPrefix(lines[i], "fatal error: ") {
			start = min(start, i)
			break
		}
	}
	return append([]string(nil), lines[start:]...)
}

type lineSource struct {
	t       *stderrTail
	partial []byte
}

func (s *lineSource) Write(p []byte) (int, error) {
	s.partial = append(s.partial, p...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			break
		}
		s.t.addLine(strings.TrimRight(string(s.partial[:i]), "\r"))
		s.partial = s.partial[i+1:]
	}
	return len(p), nil
}

// syncWriter serialises writes to a run's log, which both the run stream and
// the stderr reader write to.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}
