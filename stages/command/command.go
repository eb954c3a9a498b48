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
	"syscall"
	"time"

	"github.com/voxflow/voxflow/stages"
)

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
			{Name: "env", Type: stages.TypeMap, Default: map[string]any{}, Doc: "extra environment variables"},
			{Name: "shell", Type: stages.TypeString, Default: "bash", Doc: "shell used to run cmd"},
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
	// A process group lets cancellation reach the whole pipeline, not just bash.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
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
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", shell, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("command failed: %w", err)
		}
	case <-ctx.Done():
		// SIGTERM first so scripts can clean up, then SIGKILL.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		return fmt.Errorf("command cancelled: %w", ctx.Err())
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
