package accel

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
)

// OpStat is the time the go backend spent in one kind of op during a
// ProfileOps run: one op type on one set of shapes with one kernel.
type OpStat struct {
	// Op is the op type, e.g. "Transpose".
	Op string
	// Shapes are the output shape, then the input shapes.
	Shapes string
	// Kernel names the params type of this package's kernel that ran the
	// op, or is empty where simplego's own executor ran it.
	Kernel string
	// Calls is how many times such a node executed.
	Calls int
	// Total is the wall time of those executions.
	Total time.Duration
	// Fastest is the shortest single execution: on a shared machine,
	// Fastest x Calls estimates the unloaded cost better than Total.
	Fastest time.Duration
}

// profileMu serialises ProfileOps calls, which rewrite simplego's executor
// table and must restore it in order.
var profileMu sync.Mutex

// ProfileOps runs fn with a go backend (cfg.Backend is ignored) whose ops
// execute one at a time and are timed individually, and returns the time
// per kind of op, largest total first. fn may call reset to drop what was
// recorded so far (e.g. after a warm-up step that fills buffer pools). It is a debugging aid for finding
// what a step graph spends its time on: it rewrites simplego's executor
// table while fn runs, so no other gomlx graph on the go backend may
// execute meanwhile (not even on another backend), and it is never used by
// production code paths.
func ProfileOps(cfg Config, fn func(backend backends.Backend, reset func()) error) ([]OpStat, error) {
	profileMu.Lock()
	defer profileMu.Unlock()

	// Sequential op execution, so that one op's wall time is its own and
	// not shared with whatever simplego scheduled beside it.
	backend, err := newGoWith(cfg, "ops_sequential")
	if err != nil {
		return nil, fmt.Errorf("accel ProfileOps: %w", err)
	}
	defer backend.Finalize()

	type key struct{ op, shapes, kernel string }
	var mu sync.Mutex // ops may still run kernels that call back concurrently
	stats := map[key]*OpStat{}
	saved := sgNodeExecutors
	defer func() { sgNodeExecutors = saved }()
	for op, exec := range saved {
		if exec == nil {
			continue
		}
		opType := backends.OpType(op)
		sgNodeExecutors[op] = func(b *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
			// Shapes are read before running: executors may consume
			// (nil out) owned inputs.
			m := mirror(node)
			var sb strings.Builder
			sb.WriteString(m.shape.String())
			for _, in := range m.inputs {
				sb.WriteString(" <- ")
				sb.WriteString(shapeOf(in).String())
			}
			name := ""
			switch m.data.(type) {
			case kernel, ownedKernel:
				name = reflect.TypeOf(m.data).String()
			}
			start := time.Now()
			out, err := exec(b, node, inputs, owned)
			d := time.Since(start)
			k := key{opType.String(), sb.String(), name}
			mu.Lock()
			s := stats[k]
			if s == nil {
				s = &OpStat{Op: k.op, Shapes: k.shapes, Kernel: k.kernel}
				stats[k] = s
			}
			if s.Calls == 0 || d < s.Fastest {
				s.Fastest = d
			}
			s.Calls++
			s.Total += d
			mu.Unlock()
			return out, err
		}
	}
	reset := func() {
		mu.Lock()
		clear(stats)
		mu.Unlock()
	}
	if err := fn(backend, reset); err != nil {
		return nil, fmt.Errorf("accel ProfileOps: %w", err)
	}
	out := make([]OpStat, 0, len(stats))
	for _, s := range stats {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b OpStat) int { return int(b.Total - a.Total) })
	return out, nil
}

// FormatOpStats renders stats as a table of the top n entries (all when n
// <= 0), with times divided by steps, and a line per op type summing all
// its shapes. Each entry shows its total and, in brackets, its fastest
// call times its calls.
func FormatOpStats(stats []OpStat, steps, n int) string {
	if steps < 1 {
		steps = 1
	}
	var total, fastest time.Duration
	byOp := map[string]time.Duration{}
	fastOp := map[string]time.Duration{}
	for _, s := range stats {
		total += s.Total
		fastest += s.Fastest * time.Duration(s.Calls)
		byOp[s.Op] += s.Total
		fastOp[s.Op] += s.Fastest * time.Duration(s.Calls)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "total %.2f ms/step [%.2f] in %d kinds of op\n", ms(total, steps), ms(fastest, steps), len(stats))
	ops := make([]string, 0, len(byOp))
	for op := range byOp {
		ops = append(ops, op)
	}
	slices.SortFunc(ops, func(a, b string) int { return int(byOp[b] - byOp[a]) })
	for _, op := range ops {
		fmt.Fprintf(&sb, "  %-22s %8.2f ms/step [%8.2f] %5.1f%%\n", op, ms(byOp[op], steps), ms(fastOp[op], steps), pct(byOp[op], total))
	}
	for i, s := range stats {
		if n > 0 && i >= n {
			break
		}
		fmt.Fprintf(&sb, "%8.2f ms [%8.2f] %5.1f%% %4dx %-20s %-22s %s\n", ms(s.Total, steps),
			ms(s.Fastest*time.Duration(s.Calls), steps), pct(s.Total, total), s.Calls/steps, s.Op, s.Kernel, s.Shapes)
	}
	return sb.String()
}

func ms(d time.Duration, steps int) float64 { return d.Seconds() * 1e3 / float64(steps) }

func pct(d, total time.Duration) float64 {
	if total == 0 {
		return 0
	}
	return 100 * d.Seconds() / total.Seconds()
}
