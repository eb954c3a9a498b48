package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/voxflow/voxflow/engine/htmlreport"
)

func cmdReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("report", "RUN -o report.html", stderr)
	cacheDir := fs.String("cache", "", "cache directory (default $VOXFLOW_CACHE or ./.voxflow)")
	out := fs.String("o", "report.html", "output HTML file")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	arg, err := onePositional(pos, "RUN")
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(arg, 10, 64)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("RUN %q: want a run ID (see voxflow status)", arg)}
	}
	store, err := openStore(ctx, *cacheDir, "")
	if err != nil {
		return err
	}
	defer store.Close()
	rep, err := htmlreport.Build(ctx, store, id)
	if err != nil {
		return err
	}
	tmp := *out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := rep.Write(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", *out, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, *out); err != nil {
		return err
	}
	abs, _ := filepath.Abs(*out)
	fmt.Fprintf(stdout, "report: %s (%d figures, %d instances)\n", abs, len(rep.Figures), len(rep.Rows))
	return nil
}
