// Command implgen records the implementation identities of voxflow's
// builtin stage kinds in stages/builtin/impl_gen.go. It runs from
// `go generate ./stages/builtin` (make generate):
//
//	implgen                          record the current digests; a kind whose
//	                                 code changed gets a new identity
//	implgen -neutral ridge -reason R declare ridge's change output-neutral:
//	                                 it keeps its identity (neutral.txt)
//	implgen -check                   exit 1 if impl_gen.go is stale
//
// See package internal/implgen for what the digests cover.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/voxflow/voxflow/internal/implgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("implgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", ".", "the builtin package's directory (go generate runs in it)")
	neutral := fs.String("neutral", "", "comma-separated kinds (ridge, tune-cl, stages/ridge, or all) whose code change cannot alter outputs")
	reason := fs.String("reason", "", "with -neutral: why the change cannot alter outputs (recorded in neutral.txt)")
	check := fs.Bool("check", false, "only check that the recorded digests are current")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "implgen: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if (*neutral == "") != (*reason == "") {
		fmt.Fprintln(stderr, "implgen: -neutral and -reason go together")
		return 2
	}
	r, err := implgen.Generate(ctx, *dir)
	if err != nil {
		fmt.Fprintf(stderr, "implgen: %v\n", err)
		return 1
	}
	out := filepath.Join(*dir, implgen.GeneratedFile)
	if *check {
		if stale := r.Stale(); len(stale) > 0 {
			fmt.Fprintf(stderr, "implgen: %s is stale for %s: run go generate ./stages/builtin\n", out, strings.Join(stale, ", "))
			return 1
		}
		return 0
	}
	if *neutral != "" {
		decl, err := implgen.Declare(r, *dir, strings.Split(*neutral, ","), *reason)
		if err != nil {
			fmt.Fprintf(stderr, "implgen: %v\n", err)
			return 1
		}
		for _, n := range decl {
			fmt.Fprintf(stdout, "implgen: %s declared output-neutral (%.12s -> %.12s): it keeps its identity\n", n.Package, n.From, n.To)
		}
		// Regenerate with the new declarations read back from the file, so
		// what is written is exactly what the staleness test recomputes.
		if r, err = implgen.Generate(ctx, *dir); err != nil {
			fmt.Fprintf(stderr, "implgen: %v\n", err)
			return 1
		}
	}
	rec := map[string]implgen.Entry{}
	for _, e := range r.Recorded {
		rec[e.Package] = e
	}
	for _, e := range r.Entries {
		if old, ok := rec[e.Package]; ok && old.Identity != e.Identity {
			fmt.Fprintf(stdout, "implgen: %s: identity %.12s -> %.12s: its cached results will be recomputed\n", r.Rel(e.Package), old.Identity, e.Identity)
		}
	}
	if old, err := os.ReadFile(out); err == nil && bytes.Equal(old, r.Source) {
		return 0
	}
	if err := os.WriteFile(out, r.Source, 0o644); err != nil {
		fmt.Fprintf(stderr, "implgen: %v\n", err)
		return 1
	}
	return 0
}
