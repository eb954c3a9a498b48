package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/voxflow/voxflow/engine/spec"
	"github.com/voxflow/voxflow/stages"
)

// ErrUnknownKind is wrapped by Resolve's error for a `uses:` that names no
// builtin kind and no kind of a plugin that started; a plugin that failed
// to start gives its own error instead.
var ErrUnknownKind = errors.New("unknown stage kind")

// Version is the voxflow build's version, for humans. It is not part of
// cache keys: a builtin kind's implementation identity is the digest of its
// code (see Identified), so a release that leaves a kind's code alone keeps
// its cached results.
const Version = "0.1.0"

// Identified is a builtin stage that knows its implementation identity: a
// digest of its code, recorded at build time (stages/builtin/impl_gen.go).
type Identified interface {
	stages.Stage
	Identity() string
}

// Kind is one resolved stage kind: its description, how to run it and the
// digest that identifies its implementation in cache keys.
type Kind struct {
	Desc stages.Description
	// Impl is the implementation digest:
	// "plugin:<binary's BLAKE3>:<kind>:<version>" for a plugin, or
	// "builtin:<kind>:<stage version>:<identity>" for a builtin, where
	// identity is the digest of the kind's code (Identified). A builtin
	// without one (test doubles) gets "builtin:<kind>:<stage version>".
	Impl string
	// Stage runs the kind in this process; nil for plugin kinds.
	Stage stages.Stage
	// Plugin is the plugin binary path for kinds served by a plugin.
	Plugin string
}

// PluginOpener describes the kinds served by a plugin binary without
// keeping it running: the descriptions and the binary's digest.
type PluginOpener func(ctx context.Context, path string) ([]stages.Description, string, error)

// Registry resolves the `uses:` of spec stages to kinds: builtin kinds by
// name, plugin binaries by path ("plugin:./bin/x"), and kinds that a spec's
// `plugins:` table brings in. It is safe for concurrent use.
type Registry struct {
	builtins   map[string]*Kind
	openPlugin PluginOpener

	mu      sync.Mutex
	plugins map[string][]*Kind // binary path -> kinds it serves
	failed  map[string]error   // binary path -> why it did not start
}

// NewRegistry returns a registry of the given builtin stages. openPlugin may
// be nil when plugins are not supported by the caller.
func NewRegistry(builtins []stages.Stage, openPlugin PluginOpener) *Registry {
	r := &Registry{builtins: map[string]*Kind{}, openPlugin: openPlugin, plugins: map[string][]*Kind{}, failed: map[string]error{}}
	for _, s := range builtins {
		d := s.Describe()
		impl := "builtin:" + d.Kind + ":" + d.Version
		if id, ok := s.(Identified); ok {
			impl += ":" + id.Identity()
		}
		r.builtins[d.Kind] = &Kind{Desc: d, Stage: s, Impl: impl}
	}
	return r
}

// Builtins returns the builtin kinds sorted by name.
func (r *Registry) Builtins() []*Kind {
	out := make([]*Kind, 0, len(r.builtins))
	for _, k := range r.builtins {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Desc.Kind < out[j].Desc.Kind })
	return out
}

// KindNames returns the builtin kind names, sorted.
func (r *Registry) KindNames() []string {
	names := make([]string, 0, len(r.builtins))
	for n := range r.builtins {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Builtin returns the builtin kind named kind.
func (r *Registry) Builtin(kind string) (*Kind, bool) {
	k, ok := r.builtins[kind]
	return k, ok
}

// LoadPlugin describes the plugin binary at path (once per registry) and
// returns its kinds. A plugin that fails to start is not retried: every
// stage that uses it gets the same error, without starting it again.
func (r *Registry) LoadPlugin(ctx context.Context, path string) ([]*Kind, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ks, ok := r.plugins[path]; ok {
		return ks, nil
	}
	if err, ok := r.failed[path]; ok {
		return nil, err
	}
	if r.openPlugin == nil {
		return nil, fmt.Errorf("plugin %s: this build does not support plugins", path)
	}
	descs, digest, err := r.openPlugin(ctx, path)
	if err != nil {
		err = fmt.Errorf("plugin %s: %w", path, err)
		if ctx.Err() == nil {
			r.failed[path] = err
		}
		return nil, err
	}
	ks := make([]*Kind, len(descs))
	for i, d := range descs {
		ks[i] = &Kind{Desc: d, Impl: "plugin:" + digest + ":" + d.Kind + ":" + d.Version, Plugin: path}
	}
	r.plugins[path] = ks
	return ks, nil
}

// Resolver resolves `uses:` strings for one spec, whose `plugins:` table
// maps names to binaries. Each call takes the context that bounds the
// plugins it may have to start.
type Resolver struct {
	reg     *Registry
	dir     string            // spec directory: relative plugin paths start here
	plugins map[string]string // spec plugins table: name -> abs path
}

// Resolver returns a resolver for a spec in dir with the given plugins
// table (name -> binary path).
func (r *Registry) Resolver(dir string, plugins map[string]string) *Resolver {
	return &Resolver{reg: r, dir: dir, plugins: plugins}
}

// Resolve maps a `uses:` value to a kind: "plugin:PATH[#kind]", a kind
// served by a plugin in the spec's table, or a builtin.
func (rs *Resolver) Resolve(ctx context.Context, uses string) (*Kind, error) {
	if path, ok := strings.CutPrefix(uses, "plugin:"); ok {
		path, want, _ := strings.Cut(path, "#")
		if !filepath.IsAbs(path) {
			path = filepath.Join(rs.dir, path)
		}
		ks, err := rs.reg.LoadPlugin(ctx, path)
		if err != nil {
			return nil, err
		}
		if want == "" {
			if len(ks) != 1 {
				return nil, fmt.Errorf("plugin %s serves %d kinds; name one with plugin:%s#KIND", path, len(ks), path)
			}
			return ks[0], nil
		}
		names := make([]string, len(ks))
		for i, k := range ks {
			if k.Desc.Kind == want {
				return k, nil
			}
			names[i] = k.Desc.Kind
		}
		return nil, fmt.Errorf("plugin %s serves no kind %q%s (it serves %s): %w", path, want, spec.DidYouMean(want, names), strings.Join(names, ", "), ErrUnknownKind)
	}
	if k, ok := rs.reg.builtins[uses]; ok {
		return k, nil
	}
	// Kinds from the spec's plugins table, in name order for determinism.
	names := make([]string, 0, len(rs.plugins))
	for n := range rs.plugins {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ks, err := rs.reg.LoadPlugin(ctx, rs.plugins[n])
		if err != nil {
			return nil, fmt.Errorf("plugins.%s: %w", n, err)
		}
		for _, k := range ks {
			if k.Desc.Kind == uses || n+"."+k.Desc.Kind == uses || (n == uses && len(ks) == 1) {
				return k, nil
			}
		}
	}
	known := rs.reg.KindNames()
	return nil, fmt.Errorf("%w %q%s (known: %s)", ErrUnknownKind, uses, spec.DidYouMean(uses, known), strings.Join(known, ", "))
}

// Kinds adapts the resolver to the spec package's kind lookup, starting
// plugins under ctx.
func (rs *Resolver) Kinds(ctx context.Context) spec.Kinds {
	return func(uses string) (stages.Description, bool) {
		k, err := rs.Resolve(ctx, uses)
		if err != nil {
			return stages.Description{}, false
		}
		return k.Desc, true
	}
}
