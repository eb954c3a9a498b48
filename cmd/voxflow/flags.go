package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/voxflow/voxflow/cache"
	"github.com/voxflow/voxflow/engine"
	"github.com/voxflow/voxflow/engine/spec"
	"github.com/voxflow/voxflow/plugins"
	"github.com/voxflow/voxflow/stages/builtin"
)

// stringList is a repeatable string flag.
type stringList []string

// String joins the values given so far (flag.Value).
func (s *stringList) String() string { return strings.Join(*s, ",") }

// Set adds one more value (flag.Value).
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// commandFlags is the flag set every command parses its arguments with,
// so that all of them answer alike: -h, -help and --help print the usage
// to stdout and exit 0; an unknown flag or a bad value prints the error
// and the usage to stderr and exits 2.
type commandFlags struct {
	*flag.FlagSet
	// notes, when set, is printed under the command's one-line help:
	// what the flags alone do not say.
	notes          string
	stdout, stderr io.Writer
}

// newFlagSet returns the flag set of command name ("run", or "data synth"
// for a subcommand); args describes its arguments in the usage line. The
// usage also shows the command's help line from the dispatcher.
func newFlagSet(name, args string, stdout, stderr io.Writer) *commandFlags {
	fs := &commandFlags{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), stdout: stdout, stderr: stderr}
	fs.SetOutput(stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintln(w, strings.TrimSpace("usage: voxflow "+name+" "+args))
		if help := helpLine(name); help != "" {
			fmt.Fprintf(w, "\n%s\n", help)
		}
		if fs.notes != "" {
			fmt.Fprintln(w, fs.notes)
		}
		nflags := 0
		fs.VisitAll(func(*flag.Flag) { nflags++ })
		if nflags > 0 {
			fmt.Fprintln(w, "\nflags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseArgs parses flags that may come before or after positional
// arguments (`voxflow run spec.yaml --set a=b`), which the flag package
// alone does not allow, and returns the positional ones. Asked for help,
// it prints the usage to stdout and returns flag.ErrHelp, which the
// dispatcher turns into exit status 0; on a bad flag it prints the
// error and the usage to stderr and returns an exit status of 2.
func parseArgs(fs *commandFlags, args []string) ([]string, error) {
	// The flag package writes help and errors to one writer; collect them
	// to send each where it belongs.
	var msg bytes.Buffer
	fs.SetOutput(&msg)
	defer fs.SetOutput(fs.stderr)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				if _, werr := fs.stdout.Write(msg.Bytes()); werr != nil {
					return nil, fmt.Errorf("write usage: %w", werr)
				}
				return nil, flag.ErrHelp
			}
			fs.stderr.Write(msg.Bytes())
			return nil, &exitError{code: 2, err: err}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// cacheUsage is the help text of a --cache flag. beside is where the
// cache lies when neither the flag nor $VOXFLOW_CACHE names one (storeDir
// tries them in that order): ".voxflow beside the spec" for commands that
// read a spec, "./.voxflow" for the others.
func cacheUsage(beside string) string {
	return "cache directory (default $VOXFLOW_CACHE, else " + beside + ")"
}

// cacheFlag registers --cache for a command without a spec, whose cache is
// ./.voxflow unless the flag or $VOXFLOW_CACHE says otherwise.
func cacheFlag(fs *commandFlags) *string {
	return fs.String("cache", "", cacheUsage("./.voxflow"))
}

// specFlags are the flags every spec-reading command shares.
type specFlags struct {
	cache   string
	variant string
	sets    stringList
}

// register adds --cache, --variant and --set to fs.
func (f *specFlags) register(fs *commandFlags) {
	fs.StringVar(&f.cache, "cache", "", cacheUsage(".voxflow beside the spec"))
	fs.StringVar(&f.variant, "variant", "", "apply the spec's named variant")
	fs.Var(&f.sets, "set", "override a value: stage.with.key=value or params.key=value (repeatable)")
}

// options are the spec loader's options these flags ask for.
func (f *specFlags) options() spec.Options {
	return spec.Options{Variant: f.variant, Sets: f.sets}
}

// newRegistry returns the registry of builtin kinds with plugin support.
func newRegistry() *engine.Registry {
	return engine.NewRegistry(builtin.Stages(), plugins.Describe)
}

// loadProject loads and validates a spec with the variant and overrides
// of f.
func loadProject(ctx context.Context, reg *engine.Registry, path string, f *specFlags) (*engine.Project, error) {
	return engine.Load(ctx, reg, path, f.options())
}

// openStore opens the cache for a spec (or the current directory's),
// creating it when there is none: run and plan. A cache that exists but
// cannot be written is opened read-only (see cache.Open).
func openStore(ctx context.Context, flagDir, specPath string) (*cache.Store, error) {
	abs, err := storeDir(flagDir, specPath)
	if err != nil {
		return nil, err
	}
	s, err := cache.Open(ctx, abs)
	if err != nil {
		return nil, fmt.Errorf("open cache %s: %w", abs, err)
	}
	return s, nil
}

// openExistingStore opens a cache that must already exist, for commands
// that inspect or maintain one: a mistyped --cache fails instead of
// creating an empty cache to report on. With write unset the cache is
// opened read-only, so inspecting works on a cache this user may not write;
// with write set a read-only cache is refused in one line.
func openExistingStore(ctx context.Context, flagDir, specPath string, write bool, command string) (*cache.Store, error) {
	abs, err := storeDir(flagDir, specPath)
	if err != nil {
		return nil, err
	}
	if !write {
		return cache.OpenReadOnly(ctx, abs)
	}
	// Refuse a missing cache before Open would create one.
	ro, err := cache.OpenReadOnly(ctx, abs)
	if err != nil {
		return nil, err
	}
	ro.Close()
	s, err := cache.Open(ctx, abs)
	if err != nil {
		return nil, fmt.Errorf("open cache %s: %w", abs, err)
	}
	if s.ReadOnly() {
		s.Close()
		return nil, fmt.Errorf("the cache %s is read-only, and %s must write it", abs, command)
	}
	return s, nil
}

// storeDir is the absolute cache directory of a command: --cache, else
// $VOXFLOW_CACHE, else .voxflow beside the spec (or in the current
// directory for commands without a spec).
func storeDir(flagDir, specPath string) (string, error) {
	dir := engine.CacheDir(flagDir, specPath) // no spec: filepath.Dir("") is "."
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("cache directory %s: %w", dir, err)
	}
	return abs, nil
}

// onePositional checks a command got exactly one positional argument,
// what (e.g. "SPEC"), and returns it; anything else is a usage error.
func onePositional(pos []string, what string) (string, error) {
	if len(pos) != 1 {
		return "", &exitError{code: 2, err: fmt.Errorf("expected one %s argument, got %d", what, len(pos))}
	}
	return pos[0], nil
}

// noPositional refuses arguments to a command that takes none, which it
// would otherwise ignore: `voxflow gc DIR` must not collect ./.voxflow.
func noPositional(pos []string) error {
	if len(pos) > 0 {
		return &exitError{code: 2, err: fmt.Errorf("unexpected argument %q: this command takes only flags", pos[0])}
	}
	return nil
}
