package main

import (
	"context"
	"io"
	"slices"

	"github.com/voxflow/voxflow/stages"
)

// cmdStages is `voxflow stages [KIND...]`: the builtin stage kinds, each
// as a table fitted to the terminal (stagestable.go).
func cmdStages(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("stages", "[KIND...]", stdout, stderr)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	for _, k := range newRegistry().Builtins() {
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

// portShape says how many artifacts a port takes.
func portShape(p stages.PortSpec) string {
	s := "one"
	if p.Many {
		s = "many"
	}
	if p.Optional {
		s += ", optional"
	}
	return s
}
