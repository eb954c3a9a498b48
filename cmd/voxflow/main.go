// Command voxflow runs declarative fMRI encoding-model studies: YAML specs
// of stages, executed with content-addressed caching.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"sort"
	"syscall"
)

// command is one voxflow subcommand.
type command struct {
	run  func(ctx context.Context, args []string, stdout, stderr io.Writer) error
	help string
	// parsesHelp is set for commands that answer -h themselves (with their
	// flags); mainCode answers it for the others.
	parsesHelp bool
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help":
		return true
	}
	return false
}

// exitError carries a process exit code through the error chain.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func commands() map[string]command {
	return map[string]command{
		"run":          {cmdRun, "run a spec: execute what the cache cannot answer", true},
		"plan":         {cmdPlan, "show what a run would execute, and why", true},
		"validate":     {cmdValidate, "check a spec; exit 0 when valid, 1 otherwise", true},
		"stages":       {cmdStages, "list stage kinds with their params, inputs and outputs", true},
		"status":       {cmdStatus, "list recent runs", true},
		"show":         {cmdShow, "show one stage instance: params, inputs, outputs, timings, metrics", true},
		"log":          {cmdLog, "print the captured log of a stage instance", true},
		"gc":           {cmdGC, "drop cached objects no kept run references", true},
		"cache":        {cmdCache, "cache maintenance: `cache verify`", false},
		"data":         {cmdData, "datasets: `data inspect PATH`, `data synth DIR`", true},
		"plugins":      {cmdPlugins, "list plugin binaries and the stage kinds they serve", true},
		"plugin-serve": {cmdPluginServe, "serve voxflow's builtin stages as a plugin (used internally)", false},
		"exec-job":     {cmdExecJob, "execute one job file (used on cluster nodes)", true},
		"version":      {cmdVersion, "print the version", false},
		"compare":      {cmdCompare, "compare variants or runs side by side: params that differ, metrics with deltas", true},
		"report":       {cmdReport, "write one run as a self-contained HTML report", true},
		"diff":         {cmdDiff, "params and metrics diff between two runs or variants", true},
	}
}

func main() {
	os.Exit(mainCode(os.Args[1:], os.Stdout, os.Stderr))
}

func mainCode(args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "voxflow: unknown command %q\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	if path := os.Getenv("VOXFLOW_CPUPROFILE"); path != "" {
		// For finding where a slow command spends its time.
		if f, err := os.Create(path); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				defer pprof.StopCPUProfile()
			}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(args) > 1 && isHelp(args[1]) && !c.parsesHelp {
		// A command without flags of its own still answers -h, with exit
		// status 0 like every other command's help.
		fmt.Fprintf(stderr, "usage: voxflow %s\n  %s\n", args[0], c.help)
		return 0
	}
	err := c.run(ctx, args[1:], stdout, stderr)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		// Help asked for is not a failure, whichever flag style printed it.
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintf(stderr, "voxflow %s: %v\n", args[0], ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "voxflow %s: %v\n", args[0], err)
	if errors.Is(err, context.Canceled) {
		return 130
	}
	return 1
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: voxflow COMMAND [flags] [args]\n\ncommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-13s %s\n", n, cmds[n].help)
	}
	fmt.Fprintln(w, "\nRun `voxflow COMMAND -h` for a command's flags.")
}
