// Package teststages holds stage kinds that misbehave on purpose, served by
// the test plugin binaries to exercise the host's fault handling.
package teststages

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/voxflow/voxflow/stages"
)

// All returns every test kind.
func All() []stages.Stage {
	return []stages.Stage{
		Noop{}, Echo{},
		fault{"panic", "panics in Run's goroutine"},
		fault{"crash", "panics in a goroutine it started, crashing the process"},
		fault{"exit", "exits the process with status 7 mid-run"},
		fault{"hang", "ignores cancellation and never returns"},
		fault{"sleep", "waits for cancellation, then records it in OutDir/cancelled"},
	}
}

// Noop does nothing: the benchmark's trivial stage.
type Noop struct{}

// Describe declares the kind.
func (Noop) Describe() stages.Description {
	return stages.Description{Kind: "noop", Version: "1", Doc: "does nothing", Isolate: "inline"}
}

// Run returns at once.
func (Noop) Run(context.Context, *stages.Request) error { return nil }

// Echo writes what it received to OutDir/request.json, reports progress,
// logs, writes to stderr, and fails when param fail is true.
type Echo struct{}

// Describe declares the kind with one param of each type.
func (Echo) Describe() stages.Description {
	lo, hi := 0.0, 10.0
	return stages.Description{
		Kind: "echo", Version: "3", Doc: "echoes its request", Isolate: "process",
		Params: []stages.ParamSpec{
			{Name: "n", Type: stages.TypeInt, Default: int64(2), Min: &lo, Max: &hi, Doc: "progress steps"},
			{Name: "x", Type: stages.TypeFloat, Default: 2.0},
			{Name: "s", Type: stages.TypeString, Default: "a", Enum: []string{"a", "b"}},
			{Name: "fail", Type: stages.TypeBool, Default: false},
			{Name: "xs", Type: stages.TypeFloats, Default: []any{1.0, 2.5}},
			{Name: "m", Type: stages.TypeMap, Default: map[string]any{"k": []any{int64(1), "v"}}},
			{Name: "opt", Type: stages.TypeAny, Required: false},
		},
		Inputs:  []stages.PortSpec{{Name: "in", Many: true, Optional: true, Doc: "anything"}},
		Outputs: []stages.PortSpec{{Name: "request.json", Doc: "the request as seen"}},
	}
}

// Seen is what Echo writes: the request as the plugin saw it, with the Go
// type of every param so that tests can check types survive the wire.
type Seen struct {
	Instance   string
	Params     map[string]any
	ParamTypes map[string]string
	Inputs     map[string][]stages.Artifact
	Labels     map[string]string
	OutDir     string
	Resources  stages.Resources
}

// Run echoes the request.
func (Echo) Run(ctx context.Context, req *stages.Request) error {
	n := req.Params.Int("n")
	for i := 1; i <= n; i++ {
		req.Progress.Update(stages.Update{Phase: "echo", Done: float64(i), Total: float64(n), Unit: "step", Message: fmt.Sprintf("step %d", i)})
		fmt.Fprintf(req.Log, "log line %d\n", i)
	}
	fmt.Fprintln(os.Stderr, "echo: a line on stderr")
	if req.Params.Bool("fail") {
		return errors.New("echo failed as asked")
	}
	seen := Seen{
		Instance: req.Instance, Params: req.Params, ParamTypes: map[string]string{},
		Inputs: req.Inputs, Labels: req.Labels, OutDir: req.OutDir, Resources: req.Resources,
	}
	for k, v := range req.Params {
		seen.ParamTypes[k] = fmt.Sprintf("%T", v)
	}
	b, err := json.MarshalIndent(seen, "", "  ")
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	return os.WriteFile(filepath.Join(req.OutDir, "request.json"), b, 0o644)
}

type fault struct{ kind, doc string }

func (f fault) Describe() stages.Description {
	return stages.Description{Kind: f.kind, Version: "1", Doc: f.doc, Isolate: "process"}
}

func (f fault) Run(ctx context.Context, req *stages.Request) error {
	// The log package writes to the process's fd 2, which the host drains
	// before it reports an exit; os.Stderr goes through go-plugin's stdio
	// stream and may lose its last lines when the process dies.
	log.Printf("%s: starting %s", f.kind, req.Instance)
	req.Progress.Update(stages.Update{Phase: "started"})
	switch f.kind {
	case "panic":
		panic("boom in Run")
	case "crash":
		go func() { panic("boom in a goroutine") }()
		select {}
	case "exit":
		log.Print("exit: giving up with status 7")
		os.Exit(7)
	case "hang":
		select {}
	case "sleep":
		select {
		case <-ctx.Done():
			// Written then renamed, so that the test polling for it never
			// reads a half-written file.
			tmp := filepath.Join(req.OutDir, ".cancelled")
			if err := os.WriteFile(tmp, []byte(ctx.Err().Error()), 0o644); err != nil {
				return err
			}
			if err := os.Rename(tmp, filepath.Join(req.OutDir, "cancelled")); err != nil {
				return err
			}
			return ctx.Err()
		case <-time.After(time.Minute):
			return errors.New("sleep: never cancelled")
		}
	}
	return fmt.Errorf("unknown fault kind %q", f.kind)
}
