package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestStagesFitsATerminal runs `voxflow stages` as a user would and checks
// that no line is wider than the terminal (100 columns unless $COLUMNS
// says otherwise), that rows are not padded to the longest default, and
// that a long enumeration (features' 22 layers) is printed in full once,
// below its row.
func TestStagesFitsATerminal(t *testing.T) {
	for _, tc := range []struct {
		columns string
		width   int
	}{{"", 100}, {"132", 132}} {
		var env []string
		for _, e := range os.Environ() {
			if !strings.HasPrefix(e, "COLUMNS=") {
				env = append(env, e)
			}
		}
		if tc.columns != "" {
			env = append(env, "COLUMNS="+tc.columns)
		}
		cmd := exec.Command(voxBin, "stages")
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("voxflow stages: %v\n%s", err, out)
		}
		text := string(out)
		for i, l := range strings.Split(text, "\n") {
			if n := utf8.RuneCountInString(l); n > tc.width {
				t.Errorf("COLUMNS=%q: line %d is %d columns wide, want <= %d:\n%s", tc.columns, i+1, n, tc.width, l)
			}
			if strings.HasSuffix(l, " ") {
				t.Errorf("COLUMNS=%q: line %d ends in padding: %q", tc.columns, i+1, l)
			}
		}
		full := "features.11 | features.12 | avgpool"
		if strings.Count(strings.Join(strings.Fields(text), " "), full) != 1 {
			t.Errorf("COLUMNS=%q: the features layer list should appear in full exactly once:\n%s", tc.columns, text)
		}
		if !strings.Contains(text, "one of 22 (below)") {
			t.Errorf("COLUMNS=%q: the layer row should say its 22 choices are listed below", tc.columns)
		}
		// Every kind and every one of its params is still listed.
		for _, k := range newRegistry().Builtins() {
			if !strings.Contains(text, k.Desc.Kind+" (version ") {
				t.Errorf("kind %s missing", k.Desc.Kind)
			}
			for _, p := range k.Desc.Params {
				if !strings.Contains(text, "  "+p.Name+" ") {
					t.Errorf("%s param %s missing", k.Desc.Kind, p.Name)
				}
			}
		}
	}
}

func TestWrapWords(t *testing.T) {
	got := wrapWords("one of alpha|beta|gamma|delta and more words here", 12)
	want := []string{"one of", "alpha|beta|", "gamma|delta", "and more", "words here"}
	if strings.Join(got, "/") != strings.Join(want, "/") {
		t.Fatalf("got %q, want %q", got, want)
	}
	for _, l := range wrapWords("ΔΔΔΔΔΔΔΔΔΔΔΔΔΔΔΔΔΔΔΔ x", 8) {
		if utf8.RuneCountInString(l) > 8 || !utf8.ValidString(l) {
			t.Fatalf("line %q: want <= 8 runes of valid UTF-8", l)
		}
	}
}
