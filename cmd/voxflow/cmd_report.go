package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/voxflow/voxflow/cache"
	"github.com/voxflow/voxflow/cmd/voxflow/internal/htmlreport"
	"github.com/voxflow/voxflow/engine/spec"
)

// cmdReport is `voxflow report RUN|SPEC`: one run as a self-contained HTML
// file (internal/htmlreport), then the headline tables of its report stages.
func cmdReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("report", "RUN|SPEC [-o report.html]", stdout, stderr)
	cacheDir := fs.String("cache", "", cacheUsage(".voxflow beside SPEC, or ./.voxflow for a RUN"))
	variant := fs.String("variant", "", "with SPEC: the latest run of this variant")
	out := fs.String("o", "report.html", "output HTML file")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	arg, err := onePositional(pos, "RUN or SPEC")
	if err != nil {
		return err
	}
	specPath := ""
	id, perr := strconv.ParseInt(arg, 10, 64)
	if perr != nil {
		specPath = arg
	}
	store, err := openExistingStore(ctx, *cacheDir, specPath, false, "report")
	if err != nil {
		return err
	}
	defer store.Close()
	if specPath != "" {
		s, err := spec.Load(specPath, spec.Options{})
		if s == nil {
			return &exitError{code: 1, err: err}
		}
		r, ok, err := store.LatestRun(ctx, s.Name, *variant)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%s has no runs in this cache yet: voxflow run %s", s.Name, specPath)
		}
		id = r.ID
	}
	rep, err := htmlreport.Build(ctx, store, id)
	if err != nil {
		return err
	}
	tmp := *out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	// Written beside the target and renamed, so a failed write leaves an
	// earlier report whole; the half-written file is removed.
	err = rep.Write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, *out)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", *out, err)
	}
	if err := printHeadlines(ctx, store, id, stdout); err != nil {
		return err
	}
	abs, _ := filepath.Abs(*out)
	fmt.Fprintf(stdout, "report: %s (run %d, %d figures, %d instances)\n", abs, id, len(rep.Figures), len(rep.Rows))
	return nil
}

// printHeadlines prints the headline table of every report stage the run
// used: the numbers a person looks at first.
func printHeadlines(ctx context.Context, store *cache.Store, runID int64, w io.Writer) error {
	exs, err := store.RunExecutions(ctx, runID)
	if err != nil {
		return err
	}
	for _, e := range exs {
		if e.Kind != "report" || e.Output == "" {
			continue
		}
		dir, err := store.Path(ctx, e.Output)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(filepath.Join(dir, "headline.md"))
		if err != nil {
			continue
		}
		fmt.Fprintf(w, "%s: mean test r per ROI group\n\n%s\n", e.Instance, b)
	}
	return nil
}
