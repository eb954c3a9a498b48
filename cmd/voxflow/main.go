// Command voxflow runs declarative fMRI encoding-model studies: YAML specs
// of stages, executed with content-addressed caching.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
)

// command is one voxflow command, or a group of subcommands.
type command struct {
	run  func(ctx context.Context, args []string, stdout, stderr io.Writer) error
	help string
	// subs, set for a command group such as `data`, are its subcommands;
	// run is then unused: runGroup dispatches on the first argument.
	subs map[string]command
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

// commands is the dispatcher's table: every command voxflow answers.
func commands() map[string]command {
	return map[string]command{
		"run":          {run: cmdRun, help: "run a spec: execute what the cache cannot answer"},
		"plan":         {run: cmdPlan, help: "show what a run would execute, and why"},
		"validate":     {run: cmdValidate, help: "check a spec; exit 0 when valid, 1 otherwise"},
		"stages":       {run: cmdStages, help: "list stage kinds with their params, inputs and outputs"},
		"status":       {run: cmdStatus, help: "list recent runs"},
		"show":         {run: cmdShow, help: "show one stage instance: params, inputs, outputs, timings, metrics"},
		"log":          {run: cmdLog, help: "print the captured log of a stage instance"},
		"gc":           {run: cmdGC, help: "drop cached objects no kept run references"},
		"cache":        {help: "cache maintenance: `cache verify`", subs: cacheCommands()},
		"data":         {help: "datasets: `data inspect PATH`, `data synth DIR`", subs: dataCommands()},
		"plugins":      {run: cmdPlugins, help: "list plugin binaries and the stage kinds they serve"},
		"plugin-serve": {run: cmdPluginServe, help: "serve voxflow's builtin stages as a plugin (used internally)"},
		"exec-job":     {run: cmdExecJob, help: "execute one job file (used on cluster nodes)"},
		"version":      {run: cmdVersion, help: "print the version"},
		"compare":      {run: cmdCompare, help: "compare variants or runs side by side: params that differ, metrics with deltas"},
		"report":       {run: cmdReport, help: "write one run as a self-contained HTML report"},
		"diff":         {run: cmdDiff, help: "params and metrics diff between two runs or variants"},
	}
}

// helpLine is the dispatcher's one-line help of a command ("run") or
// subcommand ("data synth"), "" for a name it does not know.
func helpLine(name string) string {
	cmds := commands()
	var c command
	for _, word := range strings.Fields(name) {
		var ok bool
		if c, ok = cmds[word]; !ok {
			return ""
		}
		cmds = c.subs
	}
	return c.help
}

func main() {
	os.Exit(mainCode(os.Args[1:], os.Stdout, os.Stderr))
}

// mainCode runs the command args name and returns the process's exit
// status: 0 on success and for help asked for, 2 for a usage error, 130
// when interrupted, 1 (or the command's own status) otherwise.
func mainCode(args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	switch {
	case len(args) == 0:
		usage(stderr, "voxflow", cmds)
		return 2
	case isHelp(args[0]) || args[0] == "help" && len(args) == 1:
		usage(stdout, "voxflow", cmds)
		return 0
	case args[0] == "help":
		// `voxflow help CMD [SUB]` is `voxflow CMD [SUB] -h`.
		args = append(args[1:], "-h")
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "voxflow: unknown command %q\n", args[0])
		usage(stderr, "voxflow", cmds)
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
	err := runCommand(ctx, args[0], c, args[1:], stdout, stderr)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		// Help asked for is not a failure.
		return 0
	}
	name := commandName(c, args)
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintf(stderr, "voxflow %s: %v\n", name, ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "voxflow %s: %v\n", name, err)
	if errors.Is(err, context.Canceled) {
		return 130
	}
	return 1
}

// commandName is the command args ran, as error messages name it: with
// its subcommand for a group ("data synth"), so that no command needs to
// prefix its own errors.
func commandName(c command, args []string) string {
	if len(args) > 1 {
		if _, ok := c.subs[args[1]]; ok {
			return args[0] + " " + args[1]
		}
	}
	return args[0]
}

// runCommand runs command c, named name ("data" or "data synth"), on args.
func runCommand(ctx context.Context, name string, c command, args []string, stdout, stderr io.Writer) error {
	if c.subs == nil {
		return c.run(ctx, args, stdout, stderr)
	}
	return runGroup(ctx, name, c.subs, args, stdout, stderr)
}

// runGroup dispatches a command group on its first argument, answering
// help the way a command's flags do: -h and `help` print the usage to
// stdout, a missing or unknown subcommand prints it to stderr and exits 2.
func runGroup(ctx context.Context, group string, subs map[string]command, args []string, stdout, stderr io.Writer) error {
	names := slices.Sorted(maps.Keys(subs))
	want := strings.Join(names, " or ")
	if len(names) > 2 {
		want = strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
	}
	if len(args) == 0 {
		usage(stderr, "voxflow "+group, subs)
		return &exitError{code: 2, err: fmt.Errorf("expected a subcommand: %s", want)}
	}
	if isHelp(args[0]) || args[0] == "help" {
		if len(args) > 1 {
			// `voxflow data help synth` is `voxflow data synth -h`.
			args = append(args[1:], "-h")
		} else {
			usage(stdout, "voxflow "+group, subs)
			return flag.ErrHelp
		}
	}
	c, ok := subs[args[0]]
	if !ok {
		usage(stderr, "voxflow "+group, subs)
		return &exitError{code: 2, err: fmt.Errorf("unknown subcommand %q: expected %s", args[0], want)}
	}
	return runCommand(ctx, group+" "+args[0], c, args[1:], stdout, stderr)
}

// usage lists the commands of prog ("voxflow", or a group such as
// "voxflow data") with their help lines.
func usage(w io.Writer, prog string, cmds map[string]command) {
	fmt.Fprintf(w, "usage: %s COMMAND [flags] [args]\n\ncommands:\n", prog)
	for _, n := range slices.Sorted(maps.Keys(cmds)) {
		fmt.Fprintf(w, "  %-13s %s\n", n, cmds[n].help)
	}
	fmt.Fprintf(w, "\nRun `%s COMMAND -h` for a command's flags.\n", prog)
}
