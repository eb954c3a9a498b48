package plugins

import (
	"strings"
	"testing"
)

// A plugin's error is kept and shown at a readable size: a panic is one
// line and a huge error is cut at maxErrorBytes with a note; the whole text
// goes to the stage's log. A short error is left alone.
func TestShortErrorKeepsTheWholeTextInTheLog(t *testing.T) {
	huge := strings.Repeat("voxel 123 is NaN; ", 10000)
	for _, tc := range []struct {
		name, msg, want string
		inLog           bool
	}{
		{"short", "ridge: alpha must be positive", "ridge: alpha must be positive", false},
		{"multi-line, not a panic", "two problems:\n  a\n  b", "two problems:\n  a\n  b", false},
		{"panic", panicPrefix + "index out of range [3] with length 3\ngoroutine 8 [running]:\nmain.f()\n\t/x/y.go:12", panicPrefix + "index out of range [3] with length 3 (stack trace in the stage's log)", true},
		{"huge", huge, huge[:maxErrorBytes] + "... (", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log strings.Builder
			got := shortError(tc.msg, &log)
			if !strings.HasPrefix(got, tc.want) {
				t.Errorf("shortError = %.200q, want %.200q", got, tc.want)
			}
			if len(got) > maxErrorBytes+100 {
				t.Errorf("shortError kept %d bytes", len(got))
			}
			if inLog := strings.Contains(log.String(), strings.TrimRight(tc.msg, "\n")); inLog != tc.inLog {
				t.Errorf("whole error in the log: %v, want %v", inLog, tc.inLog)
			}
		})
	}
}

// A fault during a run names the one stderr line that explains it; the
// rest is in the stage's log.
func TestFaultInARunIsOneLine(t *testing.T) {
	f := &FaultError{Plugin: "/bin/voxflow-x", Pid: 42, Op: "run fit", Instance: "fit[s1]", Exit: "exit status 2",
		Err: errString("EOF"), InLog: true,
		Stderr: []string{"starting", "panic: boom", "", "goroutine 1 [running]:", "main.main()", "\t/x.go:3 +0x1"}}
	got := f.Error()
	if strings.Contains(got, "\n") || !strings.Contains(got, "panic: boom") || !strings.Contains(got, "stage's log") {
		t.Errorf("fault = %q", got)
	}
	f.InLog = false // start-up: no log, so the tail is shown
	if got := f.Error(); !strings.Contains(got, "plugin stderr (last 6 lines)") || !strings.Contains(got, "main.main()") {
		t.Errorf("start-up fault = %q", got)
	}
}

type errString string

func (e errString) Error() string { return string(e) }
