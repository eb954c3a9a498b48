// Package command is the general-purpose `command` stage kind: it runs a
// shell command with declared inputs and outputs, like a DVC stage, so
// voxflow serves anyone's scripts and the engine needs no science to test.
package command

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/voxflow/voxflow/internal/procgroup"
	"github.com/voxflow/voxflow/stages"
)

// grace is how long the command's processes get between SIGTERM and
// SIGKILL, so that scripts can clean up.
const grace = 3 * time.Second

// Stage is the command stage kind. Its zero value is ready to use.
type Stage struct{}

// New returns the command stage kind.
func New() stages.Stage { return Stage{} }

// Describe declares the kind.
func (Stage) Describe() stages.Description {
	return stages.Description{
		Kind:    "command",
		Version: "1",
		Doc:     "run a shell command; inputs as $IN_<port> (several joined by ':'), outputs written under $OUT",
		Isolate: "inline",
		Params: []stages.ParamSpec{
			{Name: "cmd", Type: stages.TypeString, Required: true, Doc: "shell command (bash -c), run with cwd = $OUT"},
			{Name: "outs", Type: stages.TypeStrings, Default: []any{}, Doc: "relative paths the command must create under $OUT"},
			{Name: "env", Type: stages.TypeMap, Default: map[string]any{}, Doc: "extra environment variables",
				Keys: `[A-Za-z_][A-Za-z0-9_]*`, KeysDoc: "an environment variable name: letters, digits and _, not starting with a digit"},
			{Name: "shell", Type: stages.TypeString, Default: "bash", Doc: "shell used to run cmd"},
			{Name: "files", Type: stages.TypePaths, Default: []any{}, Doc: "files or directories outside the cache that cmd reads (globs allowed, relative to the spec's directory): their content is part of the key"},
		},
		Inputs: []stages.PortSpec{
			{Name: "deps", Many: true, Optional: true, Doc: "artifacts the command reads ($IN_deps, and $IN_<stage> for each)"},
		},
		Outputs: []stages.PortSpec{},
	}
}

// CheckOut validates a declared output path: relative, inside the work
// directory, no "..".
func CheckOut(p string) error {
	if p == "" {
		return errors.New("empty output path")
	}
	if filepath.IsAbs(p) {
		return fmt.Errorf("output %q: absolute paths are not allowed; want a path relative to the stage's output directory", p)
	}
	clean := filepath.Clean(p)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return fmt.Errorf("output %q: escapes the stage's output directory (contains ..)", p)
	}
	return nil
}

// Run executes the command.
func (Stage) Run(ctx context.Context, req *stages.Request) error {
	outs := req.Params.Strings("outs")
	for _, o := range outs {
		if err := CheckOut(o); err != nil {
			return err
		}
	}
	shell := req.Params.String("shell")
	cmd := exec.Command(shell, "-c", req.Params.String("cmd"))
	cmd.Dir = req.OutDir
	cmd.Stdout = req.Log
	cmd.Stderr = req.Log
	cmd.Env = append(os.Environ(), "OUT="+req.OutDir)
	for port, arts := range req.Inputs {
		paths := make([]string, len(arts))
		for i, a := range arts {
			paths[i] = a.Path
			cmd.Env = append(cmd.Env, "IN_"+envName(a.Stage)+"="+a.Path)
		}
		cmd.Env = append(cmd.Env, "IN_"+envName(port)+"="+strings.Join(paths, ":"))
	}
	env := req.Params.Map("env")
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%v", k, env[k]))
	}
	for k, v := range req.Labels {
		cmd.Env = append(cmd.Env, "EACH_"+envName(k)+"="+v)
	}
	// The command runs in a process group of its own under a supervisor,
	// which takes the whole group down on cancellation, on timeout and when
	// voxflow dies, and after the command exits kills what it left running:
	// when Run returns, nothing of the command can still write to $OUT, so
	// the outputs are final when the engine hashes them. HoldDir lets a
	// later run see that a killed attempt's directory is still in use.
	// The store (req.Protect) is mounted read-only for the command, $OUT
	// excepted, where the host allows it: even as root a command cannot
	// write through $OUT/../.. into objects another stage will read.
	opt := procgroup.Options{Grace: grace, HoldDir: true, ReadOnly: req.Protect}
	if len(req.Protect) > 0 {
		opt.Writable = []string{req.OutDir}
	}
	if err := procgroup.Run(ctx, cmd, opt); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("command cancelled: %w", err)
		}
		return fmt.Errorf("command failed: %w", err)
	}
	for _, o := range outs {
		if _, err := os.Lstat(filepath.Join(req.OutDir, o)); err != nil {
			return fmt.Errorf("declared output %q was not created by the command", o)
		}
	}
	return nil
}

// envName maps a port or stage name to an environment variable suffix.
func envName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, s)
}
