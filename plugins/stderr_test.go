package plugins

import "testing"

func TestStderrTailStartsAtPanic(t *testing.T) {
	tl := newStderrTail()
	w := tl.source()
	for i := 0; i < 50; i++ {
		_, _ = w.Write([]byte("noise\n"))
	}
	_, _ = w.Write([]byte("panic: boom\n\ngoroutine 7 [running]:\n"))
	for i := 0; i < 25; i++ {
		_, _ = w.Write([]byte("\tframe\n"))
	}
	_, _ = w.Write([]byte("partial line without newline"))
	tail := tl.tail()
	if tail[0] != "panic: boom" {
		t.Errorf("tail starts with %q, want the panic line", tail[0])
	}
	if len(tail) != 28 {
		t.Errorf("tail has %d lines, want 28 (panic line to end)", len(tail))
	}
}
