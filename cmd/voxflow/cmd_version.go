package main

import (
	"context"
	"fmt"
	"io"
	"runtime"

	"github.com/voxflow/voxflow/engine"
)

// cmdVersion is `voxflow version`.
func cmdVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "", stdout, stderr)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := noPositional(pos); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "voxflow %s (%s)\n", engine.Version, runtime.Version())
	return err
}
