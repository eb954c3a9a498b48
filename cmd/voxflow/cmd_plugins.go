package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/voxflow/voxflow/plugins"
)

// pluginDescribeTimeout bounds how long one plugin may take to start and
// describe itself before `voxflow plugins` gives up on it.
const pluginDescribeTimeout = 30 * time.Second

// pluginListing is one plugin in `voxflow plugins -json`.
type pluginListing struct {
	Path   string              `json:"path"`
	Digest string              `json:"digest,omitempty"`
	Kinds  []pluginKindListing `json:"kinds,omitempty"`
	Error  string              `json:"error,omitempty"`
}

// pluginKindListing is one stage kind a plugin serves, in its listing.
type pluginKindListing struct {
	Kind    string `json:"kind"`
	Version string `json:"version"`
	Isolate string `json:"isolate,omitempty"`
	Doc     string `json:"doc,omitempty"`
}

// cmdPlugins lists the plugin binaries found in $VOXFLOW_PLUGIN_PATH and
// given as arguments (files, or directories to search), with each one's
// digest and the kinds it provides. A plugin that fails to start is listed
// with its error and makes the command fail after the listing.
func cmdPlugins(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("plugins", "[-json] [PLUGIN-OR-DIR...]", stdout, stderr)
	fs.notes = "Lists plugins in $VOXFLOW_PLUGIN_PATH (colon-separated directories; binaries named " + plugins.FilePrefix + "*) and the given paths."
	asJSON := fs.Bool("json", false, "print the listing as JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	paths, err := plugins.Find(filepath.SplitList(os.Getenv("VOXFLOW_PLUGIN_PATH"))...)
	if err != nil {
		return fmt.Errorf("$VOXFLOW_PLUGIN_PATH: %w", err)
	}
	for _, a := range pos {
		info, err := os.Stat(a)
		if err != nil {
			return fmt.Errorf("plugin %s: %w", a, err)
		}
		if !info.IsDir() {
			paths = append(paths, a)
			continue
		}
		found, err := plugins.Find(a)
		if err != nil {
			return err
		}
		paths = append(paths, found...)
	}

	var listing []pluginListing
	failed := 0
	for _, p := range paths {
		l := describeForListing(ctx, p)
		if l.Error != "" {
			failed++
		}
		listing = append(listing, l)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if listing == nil {
			listing = []pluginListing{}
		}
		if err := enc.Encode(listing); err != nil {
			return err
		}
	} else {
		printPluginListing(stdout, listing)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d plugins could not be described", failed, len(listing))
	}
	return nil
}

// describeForListing starts the plugin at path and lists what it serves,
// or the error it failed with, within pluginDescribeTimeout.
func describeForListing(ctx context.Context, path string) pluginListing {
	ctx, cancel := context.WithTimeout(ctx, pluginDescribeTimeout)
	defer cancel()
	l := pluginListing{Path: path}
	if abs, err := filepath.Abs(path); err == nil {
		l.Path = abs
	}
	descs, digest, err := plugins.Describe(ctx, path)
	if err != nil {
		l.Error = err.Error()
		// The digest still helps tell which build is broken.
		l.Digest, _ = plugins.FileDigest(path)
		return l
	}
	l.Digest = digest
	for _, d := range descs {
		l.Kinds = append(l.Kinds, pluginKindListing{Kind: d.Kind, Version: d.Version, Isolate: d.Isolate, Doc: d.Doc})
	}
	return l
}

// printPluginListing prints the listing as text: a block per plugin.
func printPluginListing(w io.Writer, listing []pluginListing) {
	if len(listing) == 0 {
		fmt.Fprintln(w, "no plugins found (set VOXFLOW_PLUGIN_PATH or name plugin binaries as arguments)")
		return
	}
	for i, l := range listing {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w, l.Path)
		if l.Digest != "" {
			fmt.Fprintf(w, "  digest  blake3:%s\n", l.Digest)
		}
		if l.Error != "" {
			fmt.Fprintf(w, "  error   %s\n", l.Error)
			continue
		}
		for _, k := range l.Kinds {
			fmt.Fprintf(w, "  kind    %s (version %s", k.Kind, k.Version)
			if k.Isolate != "" {
				fmt.Fprintf(w, ", %s", k.Isolate)
			}
			fmt.Fprintf(w, "): %s\n", k.Doc)
		}
	}
}
