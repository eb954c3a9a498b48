package main

import (
	"context"
	"io"

	"github.com/voxflow/voxflow/plugins"
	"github.com/voxflow/voxflow/stages/builtin"
)

// cmdPluginServe serves voxflow's own builtin stage kinds as a plugin: the
// engine starts `voxflow plugin-serve` for stages isolated in a process. It
// returns only when the host stops it.
func cmdPluginServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("plugin-serve", "", stdout, stderr)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := noPositional(pos); err != nil {
		// Only voxflow itself starts it, for `isolate: process` stages.
		return err
	}
	plugins.Serve(builtin.Stages()...)
	return nil
}
