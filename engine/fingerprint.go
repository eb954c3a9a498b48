package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/voxflow/voxflow/cache"
	"github.com/voxflow/voxflow/engine/spec"
	"github.com/voxflow/voxflow/stages"
)

// Outside inputs are content: every file or directory named by a param
// that its kind declares as a path (stages.TypePath, stages.TypePaths) is
// fingerprinted through the store's stat cache, and the fingerprints enter
// the key as pseudo input ports "param:<name>" in the canonical inputs
// encoding, one entry per path: {"path": ..., "digest": ...}. The digest is
// the BLAKE3 of the path's manifest (cache.PathManifest.Encode); a
// directory's manifest is also kept as an object under that digest, so
// that `plan` can name the files that changed since the last execution.

// pathPortPrefix marks the pseudo input ports of path params.
const pathPortPrefix = "param:"

// maxFileReasons bounds the files named per path param in a plan reason.
const maxFileReasons = 5

// PathInput is the fingerprint of one file or directory that a path param
// names (a glob in a TypePaths param names one PathInput per match).
type PathInput struct {
	Param    string // the param's name
	Path     string // the path as the param holds it (absolute once resolved by the spec), or a glob's match
	Manifest *cache.PathManifest
	Digest   cache.Digest // BLAKE3 of Manifest.Encode()
}

// pathMemo fingerprints each path once per plan or run: instances of a
// foreach usually share one data root.
type pathMemo struct {
	mu   sync.Mutex
	done map[string]*PathInput
}

func newPathMemo() *pathMemo { return &pathMemo{done: map[string]*PathInput{}} }

// instanceKey fingerprints inst's path params and computes its key: the
// one code path of `plan` and `run`. With save, directory manifests are
// stored as objects for later plans to diff against.
func instanceKey(ctx context.Context, store *cache.Store, memo *pathMemo, kind *Kind, inst *spec.Instance, in map[string][]stages.Artifact, save bool) (Key, []PathInput, error) {
	files, err := fingerprintParams(ctx, store, memo, kind, inst.Params, save)
	if err != nil {
		return Key{}, nil, err
	}
	key, err := ComputeKey(kind, inst.Params, inst.Labels, in, files)
	return key, files, err
}

// fingerprintParams fingerprints every path named by the path params of
// kind in params, in declaration order, glob matches sorted.
func fingerprintParams(ctx context.Context, store *cache.Store, memo *pathMemo, kind *Kind, params stages.Params, save bool) ([]PathInput, error) {
	var out []PathInput
	for _, ps := range kind.Desc.Params {
		var paths []string
		switch ps.Type {
		case stages.TypePath:
			s, _ := params[ps.Name].(string)
			if s != "" && !slices.Contains(ps.NotPaths, s) {
				paths = []string{s}
			}
		case stages.TypePaths:
			list, _ := params[ps.Name].([]any)
			for i, e := range list {
				s, _ := e.(string)
				if s == "" || slices.Contains(ps.NotPaths, s) {
					continue
				}
				if !hasGlobMeta(s) {
					paths = append(paths, s)
					continue
				}
				matches, err := filepath.Glob(s)
				if err != nil {
					return nil, fmt.Errorf("param %s[%d]: glob %q: %w", ps.Name, i, s, err)
				}
				paths = append(paths, matches...) // Glob sorts them
			}
		default:
			continue
		}
		for _, p := range paths {
			pi, err := memo.fingerprint(ctx, store, p, save)
			if err != nil {
				return nil, fmt.Errorf("param %s: %w", ps.Name, err)
			}
			pi.Param = ps.Name
			out = append(out, pi)
		}
	}
	return out, nil
}

// fingerprint returns p's fingerprint, computing it on first use.
func (m *pathMemo) fingerprint(ctx context.Context, store *cache.Store, p string, save bool) (PathInput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if pi, ok := m.done[p]; ok {
		return *pi, nil
	}
	man, _, err := store.FingerprintPath(ctx, p)
	if err != nil {
		return PathInput{}, err
	}
	b := man.Encode()
	pi := &PathInput{Path: p, Manifest: man, Digest: cache.HashBytes(b)}
	if save && man.Type == cache.PathDir && !store.ReadOnly() && !store.Has(pi.Digest) {
		// Only explanations need the file list; the key holds its digest.
		if _, err := store.PutBytes(ctx, b); err != nil && !errors.Is(err, cache.ErrReadOnly) {
			return PathInput{}, fmt.Errorf("store file list of %s: %w", p, err)
		}
	}
	m.done[p] = pi
	return *pi, nil
}

// hasGlobMeta reports whether s holds filepath.Match's special characters.
func hasGlobMeta(s string) bool { return strings.ContainsAny(s, `*?[\`) }

// pathPorts returns the key encoding of files: pseudo input ports.
func pathPorts(files []PathInput) map[string]any {
	ports := map[string]any{}
	for _, f := range files {
		list, _ := ports[pathPortPrefix+f.Param].([]any)
		ports[pathPortPrefix+f.Param] = append(list, map[string]any{"path": f.Path, "digest": string(f.Digest)})
	}
	return ports
}

// pathEntry is one path of a "param:" port as stored in a key's inputs.
type pathEntry struct {
	Path   string `json:"path"`
	Digest string `json:"digest"`
}

// pathDiff explains how the outside inputs of an instance changed since
// its last execution, whose canonical params and inputs are oldParams and
// oldInputs: "input file changed: subj01/.../lh_training_fmri.npy" (paths
// under a param's only directory relative to it, others as absolute paths),
// "input file added: ...", "input file removed: ...". A param whose value
// itself changed is left to paramDiff.
func pathDiff(ctx context.Context, store *cache.Store, oldParams, oldInputs, newParams string, files []PathInput) []string {
	var oldPorts map[string]json.RawMessage
	var op, np map[string]any
	if json.Unmarshal([]byte(oldInputs), &oldPorts) != nil || json.Unmarshal([]byte(oldParams), &op) != nil || json.Unmarshal([]byte(newParams), &np) != nil {
		return nil
	}
	byParam := map[string][]PathInput{}
	var names []string
	for _, f := range files {
		if _, ok := byParam[f.Param]; !ok {
			names = append(names, f.Param)
		}
		byParam[f.Param] = append(byParam[f.Param], f)
	}
	for port := range oldPorts {
		if name, ok := strings.CutPrefix(port, pathPortPrefix); ok && byParam[name] == nil {
			names = append(names, name)
			byParam[name] = []PathInput{}
		}
	}
	slices.Sort(names)
	var out []string
	for _, name := range names {
		if short(op[name]) != short(np[name]) {
			continue // paramDiff names the new value
		}
		raw, ok := oldPorts[pathPortPrefix+name]
		if !ok {
			out = append(out, fmt.Sprintf("input %s now keyed by content", name))
			continue
		}
		var old []pathEntry
		if json.Unmarshal(raw, &old) != nil {
			out = append(out, fmt.Sprintf("input %s changed", name))
			continue
		}
		out = append(out, paramPathDiff(ctx, store, name, old, byParam[name])...)
	}
	return out
}

// paramPathDiff diffs the paths of one path param.
func paramPathDiff(ctx context.Context, store *cache.Store, name string, old []pathEntry, cur []PathInput) []string {
	missing := string(cache.HashBytes((&cache.PathManifest{Type: cache.PathMissing}).Encode()))
	oldBy := map[string]string{}
	for _, e := range old {
		oldBy[e.Path] = e.Digest
	}
	var changed, added, removed []string
	seen := map[string]bool{}
	for _, f := range cur {
		seen[f.Path] = true
		od, ok := oldBy[f.Path]
		switch {
		case !ok || od == missing:
			if f.Manifest.Type != cache.PathMissing {
				added = append(added, f.Path)
			}
		case od == string(f.Digest):
		case f.Manifest.Type == cache.PathMissing:
			removed = append(removed, f.Path)
		case f.Manifest.Type == cache.PathDir:
			om, err := readPathManifest(ctx, store, cache.Digest(od))
			if err != nil || om.Type != cache.PathDir {
				changed = append(changed, f.Path+" (its old file list is no longer in the cache)")
				continue
			}
			c := f.Manifest.Diff(om)
			name := func(rel string) string { return rel }
			if len(cur) > 1 {
				// Several directories: say which one.
				name = func(rel string) string { return filepath.Join(f.Path, rel) }
			}
			for _, r := range c.Changed {
				changed = append(changed, name(r))
			}
			for _, r := range c.Added {
				added = append(added, name(r))
			}
			for _, r := range c.Removed {
				removed = append(removed, name(r))
			}
		default:
			changed = append(changed, f.Path)
		}
	}
	for _, e := range old {
		if !seen[e.Path] {
			removed = append(removed, e.Path)
		}
	}
	var out []string
	n := 0
	for _, group := range []struct {
		verb  string
		paths []string
	}{{"changed", changed}, {"added", added}, {"removed", removed}} {
		for _, p := range group.paths {
			if n < maxFileReasons {
				out = append(out, fmt.Sprintf("input file %s: %s", group.verb, p))
			}
			n++
		}
	}
	if n > maxFileReasons {
		out = append(out, fmt.Sprintf("... and %d more input files of %s changed, added or removed", n-maxFileReasons, name))
	}
	if n == 0 && len(old) > 0 && len(cur) == 0 {
		out = append(out, fmt.Sprintf("input %s changed", name))
	}
	return out
}

// readPathManifest loads a directory manifest kept as an object.
func readPathManifest(ctx context.Context, store *cache.Store, d cache.Digest) (*cache.PathManifest, error) {
	if !d.Valid() {
		return nil, fmt.Errorf("file list digest %q: want 64 hex digits", d)
	}
	p, err := store.Path(ctx, d)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read file list %s: %w", d.Short(), err)
	}
	return cache.DecodePathManifest(b)
}
