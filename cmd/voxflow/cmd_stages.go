package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/voxflow/voxflow/engine/spec"
)

// cmdStages is `voxflow stages [KIND...]`: the builtin stage kinds, each
// as a table fitted to the terminal (stagestable.go).
func cmdStages(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("stages", "[KIND...]", stdout, stderr)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	builtins := newRegistry().Builtins()
	kinds := make([]string, len(builtins))
	for i, k := range builtins {
		kinds[i] = k.Desc.Kind
	}
	for _, want := range pos {
		// A typo would otherwise print nothing and exit 0.
		if !slices.Contains(kinds, want) {
			return &exitError{code: 2, err: fmt.Errorf("unknown stage kind %q: expected one of %s%s",
				want, strings.Join(kinds, ", "), spec.DidYouMean(want, kinds))}
		}
	}
	for _, k := range builtins {
		d := k.Desc
		if len(pos) > 0 && !slices.Contains(pos, d.Kind) {
			continue
		}
		// Fitted to the terminal: see stagestable.go.
		if err := writeStagesTable(stdout, d, stagesWidth()); err != nil {
			return err
		}
	}
	return nil
}
