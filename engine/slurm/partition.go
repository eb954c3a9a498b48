package slurm

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// partitionTTL is how long partition limits are reused before sinfo is
// asked again: a long run sees nodes added or drained, yet hundreds of
// submissions cost one query.
const partitionTTL = time.Minute

// limits is what the largest node of a partition offers one job, as sinfo
// and scontrol report it. A job asking for more can never start there.
type limits struct {
	Partition string
	Nodes     int
	CPUs      int   // most CPUs on one node (capped by MaxCPUsPerNode)
	MemoryMB  int64 // most memory on one node (capped by MaxMemPerNode)
	GPUs      map[string]int
	// Usable is how many nodes are in a state that can run jobs (not down,
	// drained or failed).
	Usable int
}

// String is the limits as an error message shows them.
func (l *limits) String() string {
	var g []string
	for t, n := range l.GPUs {
		if t == "" {
			t = "of any type"
		}
		g = append(g, fmt.Sprintf("%d %s", n, t))
	}
	sort.Strings(g)
	gpus := "no GPUs"
	if len(g) > 0 {
		gpus = "GPUs: " + strings.Join(g, ", ")
	}
	return fmt.Sprintf("partition %s: %d node(s), at most %d CPUs, %d MB of memory and %s on one node", l.Partition, l.Nodes, l.CPUs, l.MemoryMB, gpus)
}

// gpus is the most GPUs of the given type ("" for any) on one node.
func (l *limits) gpus(typ string) int { return l.GPUs[typ] }

// partitions caches limits per partition name. The zero value is ready.
type partitions struct {
	mu sync.Mutex
	m  map[string]cachedLimits
}

type cachedLimits struct {
	l   *limits
	err error
	at  time.Time
}

// get returns the limits of partition name ("" for the cluster's default).
func (p *partitions) get(ctx context.Context, c commands, name string) (*limits, error) {
	p.mu.Lock()
	if cl, ok := p.m[name]; ok && time.Since(cl.at) < partitionTTL {
		p.mu.Unlock()
		return cl.l, cl.err
	}
	p.mu.Unlock()
	// A controller that does not answer must not stall the engine's
	// scheduling loop: the check is advisory, sbatch has the last word.
	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	l, err := queryLimits(qctx, c, name)
	cancel()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	p.mu.Lock()
	if p.m == nil {
		p.m = map[string]cachedLimits{}
	}
	p.m[name] = cachedLimits{l: l, err: err, at: time.Now()}
	p.mu.Unlock()
	return l, err
}

// queryLimits asks sinfo for each node of the partition and scontrol for
// the partition's own per-node caps.
func queryLimits(ctx context.Context, c commands, name string) (*limits, error) {
	if name == "" {
		out, err := c.run(ctx, "sinfo", "--noheader", "--format=%P")
		if err != nil {
			return nil, err
		}
		for _, p := range strings.Fields(out) {
			if strings.HasSuffix(p, "*") {
				name = strings.TrimSuffix(p, "*")
				break
			}
		}
		if name == "" {
			return nil, fmt.Errorf("sinfo lists no default partition; set the executor option partition")
		}
	}
	out, err := c.run(ctx, "sinfo", "--noheader", "--Node", "--partition="+name, "--format=%N|%c|%m|%G|%T")
	if err != nil {
		return nil, err
	}
	l := &limits{Partition: name, GPUs: map[string]int{}}
	seen := map[string]bool{}
	for _, ln := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(strings.TrimSpace(ln), "|")
		if len(f) != 5 || seen[f[0]] {
			continue
		}
		seen[f[0]] = true
		l.Nodes++
		if cpus, err := strconv.Atoi(f[1]); err == nil && cpus > l.CPUs {
			l.CPUs = cpus
		}
		if mem, err := strconv.ParseInt(strings.TrimSuffix(f[2], "+"), 10, 64); err == nil && mem > l.MemoryMB {
			l.MemoryMB = mem
		}
		for t, n := range parseGres(f[3]) {
			l.GPUs[t] = max(l.GPUs[t], n)
		}
		if usableState(f[4]) {
			l.Usable++
		}
	}
	if l.Nodes == 0 {
		return nil, fmt.Errorf("partition %q: sinfo --partition=%s lists no nodes; check the executor option partition: %w", name, name, errNoNodes)
	}
	// The partition may cap what one job takes of a node.
	if out, err := c.run(ctx, "scontrol", "show", "partition", name, "--oneliner"); err == nil {
		for _, kv := range strings.Fields(out) {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "MaxCPUsPerNode":
				if n, err := strconv.Atoi(v); err == nil && n < l.CPUs {
					l.CPUs = n
				}
			case "MaxMemPerNode":
				if n, err := strconv.ParseInt(v, 10, 64); err == nil && n < l.MemoryMB {
					l.MemoryMB = n
				}
			}
		}
	}
	return l, nil
}

// parseGres counts GPUs in a node's sinfo %G, e.g. "gpu:a100:4(S:0-1),
// lscratch:10": per type, and under "" for all types together.
func parseGres(s string) map[string]int {
	m := map[string]int{}
	for _, g := range strings.Split(s, ",") {
		g, _, _ = strings.Cut(strings.TrimSpace(g), "(")
		f := strings.Split(g, ":")
		if len(f) < 2 || f[0] != "gpu" {
			continue
		}
		n, err := strconv.Atoi(f[len(f)-1])
		if err != nil {
			continue
		}
		if len(f) == 3 {
			m[f[1]] += n
		}
		m[""] += n
	}
	return m
}

// usableState reports whether a node in this sinfo state can run jobs now
// or soon.
func usableState(s string) bool {
	s = strings.TrimRight(s, "*~#!%$@^-")
	switch {
	case strings.HasPrefix(s, "down"), strings.HasPrefix(s, "drain"), strings.HasPrefix(s, "fail"),
		strings.HasPrefix(s, "inval"), strings.HasPrefix(s, "unk"), s == "future", s == "maint", s == "reboot_issued":
		return false
	}
	return true
}

// neverClears reports pending reasons that no amount of waiting resolves:
// the request breaks a partition limit, names nodes or features that do not
// exist, or an account or QOS that is not allowed. A user must change the
// request (or an admin the cluster), so the job is failed rather than
// waited on forever.
func neverClears(reason string) bool {
	switch reason {
	case "PartitionConfig", "PartitionNodeLimit", "PartitionTimeLimit", "BadConstraints",
		"InvalidAccount", "InvalidQOS", "QOSMaxCpuPerJobLimit", "QOSMaxGRESPerJob", "QOSMaxMemoryPerJob",
		"QOSMaxNodePerJobLimit", "QOSMaxWallDurationPerJobLimit", "AssocMaxCpuPerJobLimit",
		"AssocMaxMemPerJob", "AssocMaxWallDurationPerJobLimit", "AssocMaxNodePerJobLimit":
		return true
	}
	return false
}
