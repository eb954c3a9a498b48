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
	"time"

	"github.com/voxflow/voxflow/cache"
)

// cmdShow is `voxflow show INSTANCE`: one stage instance's newest
// execution, with its params, inputs, output, timings and metrics.
func cmdShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("show", "INSTANCE [flags]", stdout, stderr)
	var inf instanceFlags
	inf.register(fs)
	asJSON := fs.Bool("json", false, "print as JSON")
	store, e, err := inf.open(ctx, fs, args, "show")
	if err != nil {
		return err
	}
	defer store.Close()
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
