package main

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/voxflow/voxflow/cache"
)

// instanceFlags are the flags of the commands about one stage instance
// (show, log): which cache, and optionally which spec's executions.
type instanceFlags struct {
	cacheDir, specName *string
}

func (f *instanceFlags) register(fs *commandFlags) {
	f.cacheDir = cacheFlag(fs)
	f.specName = fs.String("spec", "", "only executions of this spec name")
}

// open parses args (one INSTANCE), opens the cache read-only and finds the
// instance's newest execution. The caller closes the store.
func (f *instanceFlags) open(ctx context.Context, fs *commandFlags, args []string, command string) (*cache.Store, *cache.Execution, error) {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return nil, nil, err
	}
	name, err := onePositional(pos, "INSTANCE")
	if err != nil {
		return nil, nil, err
	}
	store, err := openExistingStore(ctx, *f.cacheDir, "", false, command)
	if err != nil {
		return nil, nil, err
	}
	e, err := findOne(ctx, store, *f.specName, name)
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	return store, e, nil
}

// findOne resolves an instance name (or prefix) to its newest execution.
func findOne(ctx context.Context, store *cache.Store, spec, pattern string) (*cache.Execution, error) {
	exs, err := store.FindExecutions(ctx, spec, pattern, 50)
	if err != nil {
		return nil, err
	}
	if len(exs) == 0 {
		return nil, fmt.Errorf("no execution matches %q", pattern)
	}
	names := map[string]bool{}
	for _, e := range exs {
		names[e.Instance] = true
	}
	if len(names) > 1 && !names[pattern] {
		list := make([]string, 0, len(names))
		for n := range names {
			list = append(list, n)
		}
		sort.Strings(list)
		return nil, fmt.Errorf("%q matches several instances: %s", pattern, strings.Join(list, ", "))
	}
	for _, e := range exs {
		if e.Instance == pattern || len(names) == 1 {
			return &e, nil
		}
	}
	return &exs[0], nil
}
