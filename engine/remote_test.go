package engine

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voxflow/voxflow/cache"
	"github.com/voxflow/voxflow/engine/spec"
	"github.com/voxflow/voxflow/stages"
)

// clusterExecutor stands in for a cluster: Remote, a RequestChecker that
// refuses more than 1000 MB, and an Execute that holds every job until four
// are in flight at once (or a deadline passes), recording what it saw.
type clusterExecutor struct {
	mu       sync.Mutex
	inFlight int
	peak     int
	all      chan struct{}
	seen     []stages.Resources
}

func (c *clusterExecutor) Remote() bool { return true }

func (c *clusterExecutor) CheckRequest(_ context.Context, job *Job) error {
	if job.Resources.MemoryMB > 1000 {
		return fmt.Errorf("asks for %d MB of memory, more than any node offers (at most 1000 MB)", job.Resources.MemoryMB)
	}
	return nil
}

func (c *clusterExecutor) Execute(ctx context.Context, job *Job, _ stages.Progress, _ io.Writer) error {
	c.mu.Lock()
	c.inFlight++
	c.peak = max(c.peak, c.inFlight)
	c.seen = append(c.seen, job.Resources)
	if c.inFlight == 4 {
		close(c.all)
	}
	c.mu.Unlock()
	select {
	case <-c.all:
	case <-time.After(3 * time.Second):
	case <-ctx.Done():
		return ctx.Err()
	}
	c.mu.Lock()
	c.inFlight--
	c.mu.Unlock()
	if err := os.MkdirAll(job.OutDir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(job.OutDir, "out"), []byte(job.Instance), 0o644)
}

// TestRemoteInstancesIgnoreLocalBudgets: under a remote executor the
// engine host's --cpus and --gpus neither clamp nor serialise instances
// (they reach the executor as declared, all at once), and an instance the
// cluster can never run fails with the reason instead of being skipped.
func TestRemoteInstancesIgnoreLocalBudgets(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	var sb strings.Builder
	sb.WriteString("name: remote\nstages:\n")
	for i := 0; i < 4; i++ {
		fmt.Fprintf(&sb, "  s%d:\n    uses: reader\n    resources: {cpus: 4, gpus: 1}\n    with: {root: r%d}\n", i, i)
	}
	sb.WriteString("  big:\n    uses: reader\n    resources: {memory: 2GiB}\n    with: {root: big}\n")
	specPath := filepath.Join(dir, "remote.yaml")
	if err := os.WriteFile(specPath, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	store, err := cache.Open(ctx, filepath.Join(dir, ".voxflow"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	p, err := Load(ctx, NewRegistry([]stages.Stage{readerStage{}}, nil), specPath, spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	exe := &clusterExecutor{all: make(chan struct{})}
	items, err := Plan(ctx, store, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	CheckPlan(ctx, p, items, exe, RunOptions{})
	for _, it := range items {
		if want := it.Instance == "big"; (it.Problem != "") != want {
			t.Errorf("plan: %s problem %q; want one only for big", it.Instance, it.Problem)
		}
	}
	res, err := (&Runner{Store: store, Display: discardDisplay{}, Executor: exe}).Run(ctx, p,
		RunOptions{CPUs: 1, GPUs: 0, KeepGoing: true, SpecPath: specPath})
	if err != nil {
		t.Fatal(err)
	}
	if res.Executed != 4 || res.Failed != 1 || res.Skipped != 0 || len(res.Failures) != 1 ||
		!strings.Contains(res.Failures[0].Error(), "big: asks for 2048 MB of memory") {
		t.Errorf("run = %+v (%v); want 4 executed and big failed with the cluster's reason", res, res.Failures)
	}
	if exe.peak != 4 {
		t.Errorf("%d instances were in flight at most; want all 4 despite --cpus 1 and --gpus 0", exe.peak)
	}
	for _, r := range exe.seen {
		if r.CPUs != 4 || r.GPUs != 1 {
			t.Errorf("executor got %+v; want the declared 4 CPUs and 1 GPU", r)
		}
	}
}
