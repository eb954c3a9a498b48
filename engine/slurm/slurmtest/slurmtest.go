// Package slurmtest helps tests run against the real one-node Slurm cluster
// that .ci/slurm.sh starts: it finds out whether Slurm is usable, starts it
// in CI, and builds the voxflow binary the jobs run.
package slurmtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Available reports whether sbatch exists and the controller answers with
// a usable node; the error says what is missing.
func Available() error {
	if _, err := exec.LookPath("sbatch"); err != nil {
		return fmt.Errorf("sbatch not found: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sinfo", "--noheader", "--format=%T").CombinedOutput()
	if err != nil {
		return fmt.Errorf("sinfo: %v: %s", err, bytes.TrimSpace(out))
	}
	for _, s := range strings.Fields(string(out)) {
		switch strings.TrimRight(s, "*~#") {
		case "idle", "mixed", "allocated", "completing":
			return nil
		}
	}
	return fmt.Errorf("no usable Slurm node (sinfo says %q)", strings.TrimSpace(string(out)))
}

// Start runs the repository's .ci/slurm.sh (found above the working
// directory) and reports whether Slurm is usable afterwards.
func Start() error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	script := filepath.Join(root, ".ci", "slurm.sh")
	if out, err := exec.Command(script).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v\n%s", script, err, out)
	}
	return Available()
}

// Require skips tb when Slurm is not usable here, unless the CI
// environment variable is set: then it starts Slurm with .ci/slurm.sh and
// fails tb if that does not work, since CI must run the Slurm tests.
func Require(tb testing.TB) {
	tb.Helper()
	err := Available()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "" {
		tb.Skipf("Slurm is not available here (%v); start a one-node cluster with .ci/slurm.sh", err)
	}
	if err := Start(); err != nil {
		tb.Fatalf("Slurm is required in CI and could not be started: %v", err)
	}
}

// BuildVoxflow builds ./cmd/voxflow of this repository into a temporary
// directory and returns its path: the binary the jobs run on the node.
func BuildVoxflow(tb testing.TB) string {
	tb.Helper()
	root, err := repoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	bin := filepath.Join(tb.TempDir(), "voxflow")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/voxflow")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build cmd/voxflow: %v\n%s", err, out)
	}
	return bin
}

// repoRoot is the nearest directory above the working directory that has
// a go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find the repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("find the repository root: %w", err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find the repository root: no go.mod above the working directory")
		}
		dir = parent
	}
}
