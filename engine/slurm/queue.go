package slurm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Slurm job states (squeue %T) that mean the job is over. COMPLETING is not
// among them: processes may still be writing.
func terminal(state string) bool {
	switch state {
	case "COMPLETED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY",
		"CANCELLED", "BOOT_FAIL", "DEADLINE", "REVOKED", "SPECIAL_EXIT":
		return true
	}
	return false
}

// jobInfo is one job as squeue reports it.
type jobInfo struct {
	ID      string
	State   string // e.g. PENDING, RUNNING, COMPLETED, TIMEOUT
	Reason  string // why pending, or why it ended (e.g. Resources, NonZeroExitCode)
	Comment string // our commentPrefix+key
	Dir     string // the job's working directory (sbatch --chdir): its attempt directory
}

// commands runs the Slurm client tools.
type commands struct {
	dir string // directory holding sbatch etc.; "" = PATH
}

func (c commands) run(ctx context.Context, name string, args ...string) (string, error) {
	return c.runWith(ctx, nil, name, args...)
}

// runWith is run with extra open files the command inherits (as fds 3...).
func (c commands) runWith(ctx context.Context, extra []*os.File, name string, args ...string) (string, error) {
	path := name
	if c.dir != "" {
		path = filepath.Join(c.dir, name)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	cmd.ExtraFiles = extra
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
	}
	return stdout.String(), nil
}

// squeueFormat is what squeue prints for each job; the working directory
// comes last because it is the only field that may contain a '|'.
const squeueFormat = "--format=%i|%T|%r|%k|%Z"

// squeue reports the given jobs, finished ones included while the
// controller still remembers them (MinJobAge). Jobs it has forgotten are
// absent from the map.
func (c commands) squeue(ctx context.Context, ids []string) (map[string]jobInfo, error) {
	out, err := c.run(ctx, "squeue", "--noheader", "--states=all", "--jobs="+strings.Join(ids, ","), squeueFormat)
	if err != nil {
		// Asked only about forgotten jobs, squeue fails rather than print nothing.
		if strings.Contains(err.Error(), "Invalid job id") {
			return map[string]jobInfo{}, nil
		}
		return nil, err
	}
	return parseSqueue(out), nil
}

// mine lists every job of this user that the controller remembers, for
// finding a key's job whose id was never recorded.
func (c commands) mine(ctx context.Context) (map[string]jobInfo, error) {
	out, err := c.run(ctx, "squeue", "--noheader", "--me", "--states=all", squeueFormat)
	if err != nil {
		return nil, err
	}
	return parseSqueue(out), nil
}

func parseSqueue(out string) map[string]jobInfo {
	m := map[string]jobInfo{}
	for _, ln := range strings.Split(out, "\n") {
		f := strings.SplitN(strings.TrimSpace(ln), "|", 5)
		if len(f) < 4 {
			continue
		}
		j := jobInfo{ID: f[0], State: strings.TrimRight(f[1], "+"), Reason: f[2], Comment: f[3]}
		if len(f) == 5 {
			j.Dir = f[4]
		}
		m[f[0]] = j
	}
	return m
}

// queue is a shared view of squeue for every job an Executor waits on, so
// that hundreds of waiting instances cost one squeue call per poll interval
// rather than one each: schedulers' admins notice clients that hammer
// slurmctld. The zero value is ready to use.
type queue struct {
	mu       sync.Mutex
	watched  map[string]int // job id -> number of waiters
	snap     map[string]jobInfo
	asked    map[string]bool // ids the snapshot asked about
	at       time.Time       // when the snapshot's squeue began
	err      error
	inflight chan struct{} // closed when the running refresh ends
}

// watch registers id for the batched refreshes until the returned func runs.
func (q *queue) watch(id string) func() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.watched == nil {
		q.watched = map[string]int{}
	}
	q.watched[id]++
	return func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		if q.watched[id]--; q.watched[id] <= 0 {
			delete(q.watched, id)
		}
	}
}

// lookup returns id's entry from a refresh that began no earlier than
// maxAge before this call, running one (for all watched ids at once) when
// needed. Callers that arrive while a refresh runs share the next one. found
// is false when Slurm no longer knows the job.
func (q *queue) lookup(ctx context.Context, c commands, id string, maxAge time.Duration) (info jobInfo, found bool, err error) {
	oldest := time.Now().Add(-maxAge)
	for {
		q.mu.Lock()
		if q.asked[id] && !q.at.Before(oldest) {
			info, found = q.snap[id]
			err = q.err
			q.mu.Unlock()
			return info, found, err
		}
		if ch := q.inflight; ch != nil {
			q.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return jobInfo{}, false, ctx.Err()
			}
		}
		ids := []string{id}
		for w := range q.watched {
			if w != id {
				ids = append(ids, w)
			}
		}
		sort.Strings(ids)
		ch := make(chan struct{})
		q.inflight = ch
		began := time.Now()
		q.mu.Unlock()

		// The refresh serves every waiter, so one waiter's cancellation must
		// not cut it short.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		snap, ferr := c.squeue(rctx, ids)
		cancel()

		q.mu.Lock()
		q.snap, q.err, q.at = snap, ferr, began
		q.asked = make(map[string]bool, len(ids))
		for _, i := range ids {
			q.asked[i] = true
		}
		q.inflight = nil
		close(ch)
		q.mu.Unlock()
		info, found = snap[id]
		return info, found, ferr
	}
}
