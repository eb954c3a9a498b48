package main

import (
	"context"
	"fmt"
	"io"
)

// cmdValidate is `voxflow validate SPEC`: load and check a spec, exit 0
// when it is valid.
func cmdValidate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("validate", "SPEC [flags]", stdout, stderr)
	var sf specFlags
	sf.register(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	path, err := onePositional(pos, "SPEC")
	if err != nil {
		return err
	}
	p, err := loadProject(ctx, newRegistry(), path, &sf)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	// The spec language knows no executor; the one the spec names checks
	// its type and options here as a run would.
	if _, err := executors().Check(p.Spec, ""); err != nil {
		return &exitError{code: 1, err: err}
	}
	fmt.Fprintf(stdout, "%s: valid (%d stages, %d instances)\n", path, len(p.Spec.Stages), len(p.Graph.Instances))
	return nil
}
