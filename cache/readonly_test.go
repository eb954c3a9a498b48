package cache

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A zero-byte or foreign index.db is refused, and left as it was: SQLite
// would otherwise take it for a new empty database and voxflow would start
// a new cache over a damaged one without a word.
func TestOpenRefusesABadIndex(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, content, want string
	}{
		{"empty", "", "empty (0 bytes)"},
		{"text", "this is not a database\n", "not an SQLite database"},
		{"short", "SQLite", "not an SQLite database"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "index.db")
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, open := range []func(context.Context, string) (*Store, error){Open, OpenReadOnly} {
				s, err := open(ctx, dir)
				if err == nil {
					s.Close()
					t.Fatal("bad index.db accepted")
				}
				if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
					t.Errorf("error %q does not say %q about %s", err, tc.want, path)
				}
			}
			if b, _ := os.ReadFile(path); string(b) != tc.content {
				t.Errorf("index.db changed to %q", b)
			}
		})
	}
}

// OpenReadOnly never creates a cache: a mistyped --cache of a command that
// only reads fails instead of reporting on a new, empty cache.
func TestOpenReadOnlyNeedsAnExistingCache(t *testing.T) {
	ctx := context.Background()
	parent := t.TempDir()
	for _, dir := range []string{filepath.Join(parent, "typo"), parent} {
		if _, err := OpenReadOnly(ctx, dir); !errors.Is(err, ErrNoCache) {
			t.Fatalf("OpenReadOnly(%s) = %v, want ErrNoCache", dir, err)
		}
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 0 {
		t.Fatalf("OpenReadOnly created %v", entries)
	}
}

// A store opened read-only reads everything, records no run (run 0, whose
// end and links are no-ops), and refuses every other write with
// ErrReadOnly, naming the cache.
func TestReadOnlyStoreReadsAndRefusesWrites(t *testing.T) {
	ctx := context.Background()
	dir := storeDir(t)
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.BeginRun(ctx, &Run{Spec: "nsd"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EndRun(ctx, id, StatusSucceeded); err != nil {
		t.Fatal(err)
	}
	d, err := s.PutBytes(ctx, []byte("output"))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	ro, err := OpenReadOnly(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if !ro.ReadOnly() {
		t.Fatal("ReadOnly() = false")
	}
	if runs, err := ro.Runs(ctx, 0); err != nil || len(runs) != 1 || runs[0].Status != StatusSucceeded {
		t.Fatalf("Runs = %v, %v", runs, err)
	}
	if _, err := ro.Object(ctx, d); err != nil {
		t.Fatal(err)
	}
	r := &Run{Spec: "nsd"}
	if id, err := ro.BeginRun(ctx, r); err != nil || id != 0 || r.ID != 0 {
		t.Fatalf("BeginRun on a read-only store = %d, %v", id, err)
	}
	if err := ro.EndRun(ctx, 0, StatusSucceeded); err != nil {
		t.Fatalf("EndRun(0): %v", err)
	}
	if err := ro.LinkRuns(ctx, 0, []int64{1}, true); err != nil {
		t.Fatalf("LinkRuns(0): %v", err)
	}
	writes := map[string]error{}
	_, writes["PutBytes"] = ro.PutBytes(ctx, []byte("new"))
	writes["EndRun"] = ro.EndRun(ctx, id, StatusFailed)
	writes["LinkRun"] = ro.LinkRun(ctx, id, 1, true)
	writes["Remove"] = ro.Remove(ctx, d)
	for name, err := range writes {
		if !errors.Is(err, ErrReadOnly) || !strings.Contains(err.Error(), ro.Dir()) {
			t.Errorf("%s on a read-only store: %v, want ErrReadOnly naming %s", name, err, ro.Dir())
		}
	}
	if runs, _ := ro.Runs(ctx, 0); len(runs) != 1 {
		t.Errorf("read-only store now has %d runs", len(runs))
	}
	if !ro.Has(d) {
		t.Error("Remove on a read-only store removed the object")
	}
}

// A run recorded as running whose process is gone reads as died; so does
// one whose pid now belongs to a process started at another time.
func TestRunDiedWhenItsProcessIsGone(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	id, err := s.BeginRun(ctx, &Run{Spec: "nsd", PID: cmd.Process.Pid})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Run(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if r.PIDStart == 0 {
		t.Fatal("BeginRun recorded no process start time")
	}
	if got := r.CurrentStatus(); got != StatusRunning {
		t.Fatalf("live run shows %q", got)
	}
	// A zombie (killed, not yet collected) has died too.
	cmd.Process.Kill()
	for {
		if st, _, err := procStat(cmd.Process.Pid); err != nil || st == "Z" {
			break
		}
	}
	if got := r.CurrentStatus(); got != StatusDied {
		t.Fatalf("zombie run shows %q", got)
	}
	cmd.Wait()
	if got := r.CurrentStatus(); got != StatusDied {
		t.Fatalf("killed run shows %q", got)
	}

	// This process, recorded with another start time: a recycled pid.
	me := &Run{Spec: "nsd", Status: StatusRunning, PID: os.Getpid(), Host: r.Host}
	if me.CurrentStatus() != StatusRunning {
		t.Fatal("this process, without a start time, shows as died")
	}
	start, err := ProcessStart(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	me.PIDStart = start
	if me.CurrentStatus() != StatusRunning {
		t.Fatal("this process shows as died")
	}
	me.PIDStart = start - 1
	if me.CurrentStatus() != StatusDied {
		t.Fatal("a recycled pid shows as running")
	}
	// Another host cannot be checked: still running; a finished run keeps
	// its status.
	other := &Run{Status: StatusRunning, PID: 1 << 30, Host: r.Host + "-elsewhere"}
	if other.CurrentStatus() != StatusRunning {
		t.Fatal("a run on another host shows as died")
	}
	done := &Run{Status: StatusSucceeded, PID: 1 << 30, Host: r.Host}
	if done.CurrentStatus() != StatusSucceeded {
		t.Fatal("a finished run changed status")
	}
}
