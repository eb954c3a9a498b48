package slurm

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFollowerHoldsPartialLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	f := &follower{path: path}
	if b, err := f.next(false); err != nil || len(b) != 0 {
		t.Fatalf("next on a missing file = %q, %v; want nothing", b, err)
	}
	out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	step := func(write string, all bool, want string) {
		t.Helper()
		if _, err := out.WriteString(write); err != nil {
			t.Fatal(err)
		}
		b, err := f.next(all)
		if err != nil || string(b) != want {
			t.Errorf("after writing %q: next(%v) = %q, %v; want %q", write, all, b, err, want)
		}
	}
	step("one\ntw", false, "one\n")
	step("o\nthr", false, "two\n")
	step("", false, "")
	step("ee", true, "three")
}

func TestTailStartsAtALine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, []byte("aaaa\nbbbb\ncccc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := tail(path, 8); got != "cccc" {
		t.Errorf("tail(8) = %q, want %q", got, "cccc")
	}
	if got := tail(path, 100); got != "aaaa\nbbbb\ncccc" {
		t.Errorf("tail(100) = %q", got)
	}
	if got := tail(filepath.Join(t.TempDir(), "missing"), 100); got != "" {
		t.Errorf("tail of a missing file = %q, want empty", got)
	}
}
