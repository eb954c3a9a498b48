package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/voxflow/voxflow/cache"
	"github.com/voxflow/voxflow/stages"
)

func cmdStages(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("stages", "[KIND...]", stderr)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	for _, k := range newRegistry().Builtins() {
		d := k.Desc
		if len(pos) > 0 && !contains(pos, d.Kind) {
			continue
		}
		// Fitted to the terminal: see stagestable.go.
		if err := writeStagesTable(stdout, d, stagesWidth()); err != nil {
			return err
		}
	}
	return nil
}

func portShape(p stages.PortSpec) string {
	s := "one"
	if p.Many {
		s = "many"
	}
	if p.Optional {
		s += ", optional"
	}
	return s
}

func fmtValue(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", "[flags]", stderr)
	cacheDir := fs.String("cache", "", "cache directory (default $VOXFLOW_CACHE or ./.voxflow)")
	limit := fs.Int("n", 20, "how many runs")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	store, err := openExistingStore(ctx, *cacheDir, "", false, "status")
	if err != nil {
		return err
	}
	defer store.Close()
	runs, err := store.Runs(ctx, *limit)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tSPEC\tVARIANT\tSTATUS\tSTARTED\tDURATION\tEXECUTED\tCACHED")
	for _, r := range runs {
		ex, err := store.RunExecutions(ctx, r.ID)
		if err != nil {
			return err
		}
		executed, cached := 0, 0
		for _, e := range ex {
			if e.Cached {
				cached++
			} else {
				executed++
			}
		}
		dur := "-"
		if !r.End.IsZero() {
			dur = r.End.Sub(r.Start).Round(time.Millisecond).String()
		}
		// A run whose process died (SIGKILL, OOM) still reads "running" in
		// the index; CurrentStatus tells it apart.
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", r.ID, r.Spec, orDefault(r.Variant, "-"), r.CurrentStatus(),
			r.Start.Local().Format("2006-01-02 15:04:05"), dur, executed, cached)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return clusterJobs(ctx, store, stdout)
}

// findOne resolves an instance name (or prefix) to its newest execution.
func findOne(ctx context.Context, store *cache.Store, spec, pattern string) (*cache.Execution, error) {
	exs, err := store.FindExecutions(ctx, spec, pattern, 50)
	if err != nil {
		return nil, err
	}
	if len(exs) == 0 {
		return nil, fmt.Errorf("no execution matches %q", pattern)
	}
	names := map[string]bool{}
	for _, e := range exs {
		names[e.Instance] = true
	}
	if len(names) > 1 && !names[pattern] {
		list := make([]string, 0, len(names))
		for n := range names {
			list = append(list, n)
		}
		sort.Strings(list)
		return nil, fmt.Errorf("%q matches several instances: %s", pattern, strings.Join(list, ", "))
	}
	for _, e := range exs {
		if e.Instance == pattern || len(names) == 1 {
			return &e, nil
		}
	}
	return &exs[0], nil
}

func cmdShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("show", "INSTANCE [flags]", stderr)
	cacheDir := fs.String("cache", "", "cache directory (default $VOXFLOW_CACHE or ./.voxflow)")
	specName := fs.String("spec", "", "only executions of this spec name")
	asJSON := fs.Bool("json", false, "print as JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	name, err := onePositional(pos, "INSTANCE")
	if err != nil {
		return err
	}
	store, err := openExistingStore(ctx, *cacheDir, "", false, "show")
	if err != nil {
		return err
	}
	defer store.Close()
	e, err := findOne(ctx, store, *specName, name)
	if err != nil {
		return err
	}
	metrics, err := store.Metrics(ctx, e.ID)
	if err != nil {
		return err
	}
	var outPath string
	if e.Output != "" {
		if p, err := store.Path(ctx, e.Output); err == nil {
			outPath = p
		}
	}
	var params, inputs any
	_ = json.Unmarshal([]byte(e.Params), &params)
	_ = json.Unmarshal([]byte(e.Inputs), &inputs)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{
			"instance": e.Instance, "spec": e.Spec, "kind": e.Kind, "key": e.Key, "status": e.Status,
			"impl": e.Impl, "params": params, "inputs": inputs, "output": e.Output, "output_path": outPath,
			"start": e.Start, "end": e.End, "host": e.Host, "error": e.Error, "metrics": metrics,
		})
	}
	fmt.Fprintf(stdout, "instance  %s (spec %s)\nkind      %s (%s)\nstatus    %s\nkey       %s\n", e.Instance, e.Spec, e.Kind, e.Impl, e.Status, e.Key)
	fmt.Fprintf(stdout, "timing    %s -> %s (%s) on %s\n", e.Start.Local().Format(time.DateTime), e.End.Local().Format(time.TimeOnly), e.End.Sub(e.Start).Round(time.Millisecond), e.Host)
	if e.Error != "" {
		fmt.Fprintf(stdout, "error     %s\n", e.Error)
	}
	fmt.Fprintln(stdout, "params")
	if pm, ok := params.(map[string]any); ok {
		names := make([]string, 0, len(pm))
		for k := range pm {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			fmt.Fprintf(stdout, "  %-16s %s\n", k, fmtValue(pm[k]))
		}
	}
	fmt.Fprintln(stdout, "inputs")
	for _, line := range inputLines(ctx, store, e.Inputs) {
		fmt.Fprintf(stdout, "  %s\n", line)
	}
	if e.Output != "" {
		where := outPath
		switch {
		case outPath == "":
			where = "(not on disk)"
		case store.ReadOnly() && !strings.HasPrefix(outPath, store.Dir()+string(filepath.Separator)):
			// A read-only cache cannot materialise a tree under trees/;
			// the listing below comes from a copy that is gone on exit.
			where = "(not materialised: the cache is read-only)"
		}
		fmt.Fprintf(stdout, "output    %s\n          %s\n", e.Output, where)
		if outPath != "" {
			entries, _ := os.ReadDir(outPath)
			for _, en := range entries {
				fmt.Fprintf(stdout, "            %s\n", en.Name())
			}
		}
	}
	if len(metrics) > 0 {
		names := make([]string, 0, len(metrics))
		for k := range metrics {
			names = append(names, k)
		}
		sort.Strings(names)
		fmt.Fprintln(stdout, "metrics")
		for _, k := range names {
			fmt.Fprintf(stdout, "  %-40s %.6g\n", k, metrics[k])
		}
	}
	return nil
}

// inputLines renders an execution's inputs, one artifact a line, with
// where each lies on disk.
func inputLines(ctx context.Context, store *cache.Store, inputsJSON string) []string {
	var in map[string][]struct {
		Stage  string            `json:"stage"`
		Output string            `json:"output"`
		Labels map[string]string `json:"labels"`
		Digest string            `json:"digest"`
	}
	if err := json.Unmarshal([]byte(inputsJSON), &in); err != nil {
		return []string{inputsJSON}
	}
	ports := make([]string, 0, len(in))
	for p := range in {
		ports = append(ports, p)
	}
	sort.Strings(ports)
	var out []string
	for _, p := range ports {
		for _, a := range in[p] {
			ref := a.Stage
			if len(a.Labels) > 0 {
				keys := make([]string, 0, len(a.Labels))
				for k := range a.Labels {
					keys = append(keys, k+"="+a.Labels[k])
				}
				sort.Strings(keys)
				ref += "[" + strings.Join(keys, ",") + "]"
			}
			if a.Output != "" {
				ref += "." + a.Output
			}
			path := "(not on disk)"
			if p, err := store.Path(ctx, cache.Digest(a.Digest)); err == nil {
				path = p
			}
			out = append(out, fmt.Sprintf("%-10s %s %s\n             %s", p, ref, cache.Digest(a.Digest).Short(), path))
		}
	}
	return out
}

func cmdLog(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("log", "INSTANCE [flags]", stderr)
	cacheDir := fs.String("cache", "", "cache directory (default $VOXFLOW_CACHE or ./.voxflow)")
	specName := fs.String("spec", "", "only executions of this spec name")
	attempt := fs.Int("attempt", 0, "print Slurm attempt N of the instance (job, end state, script and Slurm log) instead of the captured log")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	name, err := onePositional(pos, "INSTANCE")
	if err != nil {
		return err
	}
	store, err := openExistingStore(ctx, *cacheDir, "", false, "log")
	if err != nil {
		return err
	}
	defer store.Close()
	e, err := findOne(ctx, store, *specName, name)
	if err != nil {
		return err
	}
	if *attempt != 0 {
		return printAttempt(stdout, store, e, *attempt)
	}
	if e.Log == "" {
		return fmt.Errorf("%s: no log was captured", e.Instance)
	}
	p, err := store.Path(ctx, e.Log)
	if err != nil {
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(stdout, f)
	return err
}

func cmdGC(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gc", "[flags]", stderr)
	cacheDir := fs.String("cache", "", "cache directory (default $VOXFLOW_CACHE or ./.voxflow)")
	keep := fs.Int("keep-last", 1, "keep the objects of the newest N runs of each spec and variant (0 keeps all)")
	grace := fs.Duration("grace", cache.DefaultGrace, "keep objects, temp files and executions younger than this (outputs being stored right now)")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	if *grace < 0 {
		return &exitError{code: 2, err: fmt.Errorf("--grace %s: want a duration >= 0", *grace)}
	}
	store, err := openExistingStore(ctx, *cacheDir, "", true, "gc")
	if err != nil {
		return err
	}
	defer store.Close()
	store.Grace = *grace
	rep, err := store.GC(ctx, *keep)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "gc: kept %d run(s); removed %d object(s), %.1f MB\n", rep.KeptRuns, rep.RemovedObjects, float64(rep.RemovedBytes)/1e6)
	return nil
}

func cmdCache(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return &exitError{code: 2, err: fmt.Errorf("usage: voxflow cache verify [--cache DIR]")}
	}
	fs := newFlagSet("cache verify", "[flags]", stderr)
	cacheDir := fs.String("cache", "", "cache directory (default $VOXFLOW_CACHE or ./.voxflow)")
	if _, err := parseArgs(fs, args[1:]); err != nil {
		return err
	}
	store, err := openExistingStore(ctx, *cacheDir, "", true, "cache verify")
	if err != nil {
		return err
	}
	defer store.Close()
	rep, err := store.Verify(ctx, nil)
	if err != nil {
		return err
	}
	for _, d := range rep.Corrupt {
		fmt.Fprintf(stdout, "corrupt object %s moved to quarantine/\n", d)
	}
	for _, d := range rep.DamagedTrees {
		fmt.Fprintf(stdout, "materialised tree trees/%s did not match its manifest; removed (rebuilt on next use)\n", d)
	}
	if len(rep.Instances) > 0 {
		fmt.Fprintf(stdout, "invalidated (the next run recomputes them): %s\n", strings.Join(rep.Instances, ", "))
	}
	fmt.Fprintf(stdout, "verify: %d object(s) checked, %d corrupt, %d damaged tree(s), %d execution(s) invalidated\n",
		rep.Checked, len(rep.Corrupt), len(rep.DamagedTrees), len(rep.Invalidated))
	if n := len(rep.Corrupt) + len(rep.DamagedTrees); n > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d corrupt object(s), %d damaged tree(s); the next run recomputes what they held", len(rep.Corrupt), len(rep.DamagedTrees))}
	}
	return nil
}
