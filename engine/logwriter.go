package engine

import (
	"bytes"
	"fmt"
	"os"
	"sync"
)

// logWriter captures a stage's log into a file in its work directory and
// keeps the last lines in memory, so a failure can show its tail without
// rereading the file.
type logWriter struct {
	mu      sync.Mutex
	f       *os.File
	keep    int
	lines   []string
	partial []byte
}

func newLogWriter(path string, keep int) (*logWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create log: %w", err)
	}
	return &logWriter{f: f, keep: keep}, nil
}

// Write appends p to the log file and the tail.
func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.f.Write(p)
	data := append(w.partial, p...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		w.lines = append(w.lines, string(data[:i]))
		if len(w.lines) > w.keep {
			w.lines = w.lines[len(w.lines)-w.keep:]
		}
		data = data[i+1:]
	}
	w.partial = append([]byte(nil), data...)
	return n, err
}

// Tail returns the last lines written, including an unterminated one.
func (w *logWriter) Tail() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := append([]string(nil), w.lines...)
	if len(w.partial) > 0 {
		out = append(out, string(w.partial))
		if len(out) > w.keep {
			out = out[len(out)-w.keep:]
		}
	}
	return out
}

// Close closes the file.
func (w *logWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.f.Close()
}
