package engine

import (
	"context"
	"fmt"
	"slices"

	"github.com/voxflow/voxflow/cache"
	"github.com/voxflow/voxflow/engine/spec"
	"github.com/voxflow/voxflow/stages"
)

// decider answers, for one plan or one run, the question both ask of every
// instance in dependency order: would the cache answer it, and if not, why
// does it run? Plan and run share this one code path so that what plan
// shows is what run does. The two differ only where noted on run.
type decider struct {
	store *cache.Store
	p     *Project
	force []string // stage names or instance IDs to rerun regardless of the cache
	// run is true for a run: it stores directory manifests for later plans
	// to diff against, checks a hit's objects before trusting it
	// (cachedHit) and needs no explanation of a miss. A plan writes
	// nothing, trusts the index and explains every miss.
	run bool

	reusable map[cache.Digest]*cache.Execution // the spec's reusable executions, read once
	outputs  map[string]cache.Digest           // instance ID -> output, as the walk learns them
	memo     *pathMemo
	sel      *selector
}

// newDecider reads the spec's reusable executions once, so that a mostly
// cached DAG is answered with one query rather than one per instance.
func newDecider(ctx context.Context, store *cache.Store, p *Project, force []string, run bool) (*decider, error) {
	reusable, err := store.Reusable(ctx, p.Spec.Name)
	if err != nil {
		return nil, err
	}
	return &decider{store: store, p: p, force: force, run: run, reusable: reusable,
		outputs: map[string]cache.Digest{}, memo: newPathMemo(), sel: newSelector(store)}, nil
}

// decision is what the decider concluded for one instance.
type decision struct {
	// inst is the instance as it runs: edges from upstream instances a
	// selection did not choose are dropped.
	inst *spec.Instance
	// action is ActionCached, ActionRun, ActionWaiting or ActionNotChosen.
	action string
	// reasons say why it runs (plans only), waits or was not chosen.
	reasons []string
	// chosen says why a selection chose it, when one did.
	chosen string
	forced bool
	// known is false while an upstream output is unknown (plans only): the
	// key cannot be computed yet.
	known bool
	key   Key
	files []PathInput
	in    map[string][]stages.Artifact // input artifacts, without paths
	hit   *cache.Execution             // the execution reused, for ActionCached
	// selErr says why a selection over the instance cannot be evaluated;
	// keyErr why its inputs or key cannot be computed (wrapped with the
	// instance ID). Either way the instance cannot run: a run fails it, a
	// plan reports it.
	selErr, keyErr error
}

// produced tells the decider an instance's output, so that its dependents
// can be keyed.
func (d *decider) produced(id string, out cache.Digest) { d.outputs[id] = out }

// forced reports whether the user asked to rerun inst.
func (d *decider) forced(inst *spec.Instance) bool {
	return slices.Contains(d.force, inst.Stage.Name) || slices.Contains(d.force, inst.ID)
}

// decide settles inst once every upstream instance has been dealt with:
// the selection gates first, then the key from the upstream outputs, then
// the cache. The error is the index failing, which ends a plan or run;
// what is wrong with the instance itself is in the decision.
func (d *decider) decide(ctx context.Context, inst *spec.Instance) (decision, error) {
	pruned, v, err := d.sel.admit(ctx, inst)
	dec := decision{inst: pruned, action: ActionRun}
	switch {
	case err != nil:
		dec.selErr = err
		return dec, nil
	case v.action != "":
		dec.action, dec.reasons = v.action, []string{v.reason}
		return dec, nil
	}
	inst, dec.chosen, dec.forced = pruned, v.note, d.forced(pruned)
	kind := d.p.Kinds[inst.Stage.Name]
	dec.in, dec.known, err = artifacts(ctx, d.store, inst, d.outputs, false)
	if err != nil {
		dec.keyErr = fmt.Errorf("%s: %w", inst.ID, err)
		return dec, nil
	}
	if dec.known {
		dec.key, dec.files, err = instanceKey(ctx, d.store, d.memo, kind, inst, dec.in, d.run)
		if err != nil {
			dec.keyErr = fmt.Errorf("%s: %w", inst.ID, err)
			return dec, nil
		}
		d.sel.keyed(inst.ID, dec.key.Digest)
		if !dec.forced {
			ex, ok, err := d.lookup(ctx, inst.ID, dec.key.Digest)
			if err != nil {
				return dec, fmt.Errorf("%s: %w", inst.ID, err)
			}
			if ok {
				dec.action, dec.hit = ActionCached, ex
				return dec, nil
			}
		}
	}
	if !d.run {
		if dec.reasons, err = d.explain(ctx, kind, dec); err != nil {
			return dec, err
		}
	}
	return dec, nil
}

// lookup finds a reusable execution of key. A run checks the hit's objects
// first (a corrupt output is then a miss); a plan takes the index's word,
// as it must not quarantine anything.
func (d *decider) lookup(ctx context.Context, id string, key cache.Digest) (*cache.Execution, bool, error) {
	if d.run {
		return cachedHit(ctx, d.store, id, key, d.reusable)
	}
	if ex, ok := d.reusable[key]; ok {
		return ex, true, nil
	}
	return d.store.Lookup(ctx, key)
}

// explain says why an instance that is not cached runs: the inputs whose
// upstream runs first, and the differences from its last success.
func (d *decider) explain(ctx context.Context, kind *Kind, dec decision) ([]string, error) {
	inst := dec.inst
	var pending []string
	for port, edges := range inst.Inputs {
		for _, e := range edges {
			if _, ok := d.outputs[e.From.ID]; !ok {
				pending = append(pending, fmt.Sprintf("input %s: upstream %s runs first", port, e.From.ID))
				break
			}
		}
	}
	slices.Sort(pending)
	files := dec.files
	if !dec.known {
		// The key waits for upstream outputs; changed files are worth
		// naming all the same.
		var err error
		if files, err = fingerprintParams(ctx, d.store, d.memo, kind, inst.Params, false); err != nil {
			return nil, fmt.Errorf("%s: %w", inst.ID, err)
		}
	}
	return reasons(ctx, d.store, d.p, inst, kind, dec.key, files, pending, dec.forced)
}
