package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/voxflow/voxflow/cache"
	"github.com/voxflow/voxflow/engine/spec"
	"github.com/voxflow/voxflow/stages"
)

// Project is a loaded, validated and expanded spec: what plan and run work
// on.
type Project struct {
	Spec  *spec.Spec
	Graph *spec.Graph
	// Kinds maps stage names to their resolved kinds.
	Kinds map[string]*Kind
}

// Load reads, validates and expands the spec at path with a variant and
// --set overrides applied. Every problem found is reported at once, each
// naming file:line:col.
func Load(ctx context.Context, reg *Registry, path string, opt spec.Options) (*Project, error) {
	s, err := spec.Load(path, opt)
	if s == nil {
		return nil, err
	}
	// Parse errors come back again from Validate, with the kind-dependent
	// ones, so the user sees every problem at once.
	res := reg.Resolver(s.Dir, s.Plugins)
	// Expand validates first and reports every problem at once.
	g, err := spec.Expand(s, res.Kinds(ctx), reg.KindNames()...)
	if err != nil {
		return nil, pluginErrors(ctx, err, s, res)
	}
	p := &Project{Spec: s, Graph: g, Kinds: map[string]*Kind{}}
	for _, st := range s.Stages {
		k, err := res.Resolve(ctx, st.Uses)
		if err != nil {
			return nil, fmt.Errorf("%s: stage %s: %w", st.Pos, st.Name, err)
		}
		p.Kinds[st.Name] = k
	}
	return p, nil
}

// pluginErrors replaces validation's "unknown stage kind" for a stage whose
// plugin failed to start with that plugin's own error: the kind is not
// unknown, its plugin is broken, and one line should say so.
func pluginErrors(ctx context.Context, err error, s *spec.Spec, res *Resolver) error {
	var list spec.ErrorList
	if !errors.As(err, &list) {
		return err
	}
	var out spec.ErrorList
	broken := map[spec.Pos]bool{}
	first := map[string]string{} // error text -> first stage that got it
	for _, st := range s.Stages {
		if st.Uses == "" {
			continue
		}
		if _, rerr := res.Resolve(ctx, st.Uses); rerr != nil && !errors.Is(rerr, ErrUnknownKind) {
			pos := st.FieldPos["uses"]
			broken[pos] = true
			msg := fmt.Sprintf("stage %s: %v", st.Name, rerr)
			if prev, seen := first[rerr.Error()]; seen {
				// One plugin's start-up error, printed once.
				msg = fmt.Sprintf("stage %s: its plugin did not start either (see stage %s)", st.Name, prev)
			} else {
				first[rerr.Error()] = st.Name
			}
			out = append(out, &spec.Error{Pos: pos, Msg: msg})
		}
	}
	for _, e := range list {
		if broken[e.Pos] && strings.HasPrefix(e.Msg, "unknown stage kind") {
			continue
		}
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Pos, out[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	return out
}

// CacheDir returns where a spec's cache lives: flag, then VOXFLOW_CACHE,
// then .voxflow beside the spec.
func CacheDir(flag, specPath string) string {
	if flag != "" {
		return flag
	}
	if env := os.Getenv("VOXFLOW_CACHE"); env != "" {
		return env
	}
	return filepath.Join(filepath.Dir(specPath), ".voxflow")
}

// artifacts builds the input artifacts of inst from its upstream
// instances' output digests. It returns ok=false when an upstream output
// is not known yet. withPaths materialises each artifact on disk, which
// only execution needs.
func artifacts(ctx context.Context, store *cache.Store, inst *spec.Instance, outputs map[string]cache.Digest, withPaths bool) (map[string][]stages.Artifact, bool, error) {
	in := make(map[string][]stages.Artifact, len(inst.Inputs))
	for port, edges := range inst.Inputs {
		arts := make([]stages.Artifact, 0, len(edges))
		for _, e := range edges {
			d, ok := outputs[e.From.ID]
			if !ok {
				return nil, false, nil
			}
			if e.Output != "" {
				sub, err := store.Sub(ctx, d, e.Output)
				if err != nil {
					return nil, false, fmt.Errorf("input %s: output %s of %s: %w", port, e.Output, e.From.ID, err)
				}
				d = sub
			}
			a := stages.Artifact{Stage: e.From.Stage.Name, Output: e.Output, Labels: e.From.Labels, Digest: string(d)}
			if withPaths {
				p, err := store.Path(ctx, d)
				if err != nil {
					return nil, false, fmt.Errorf("input %s from %s: %w", port, e.From.ID, err)
				}
				a.Path = p
			}
			arts = append(arts, a)
		}
		in[port] = arts
	}
	return in, true, nil
}

// StageOf is the in-process implementation of job's kind (a StageLookup
// for LocalExecutor); a plugin kind has none and runs in its process.
func (p *Project) StageOf(job *Job) (stages.Stage, error) {
	if k := p.Kinds[job.Stage]; k != nil && k.Stage != nil {
		return k.Stage, nil
	}
	return nil, fmt.Errorf("%s: kind %s has no in-process implementation", job.Instance, job.Kind)
}
