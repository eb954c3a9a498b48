package engine

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/voxflow/voxflow/cache"
	"github.com/voxflow/voxflow/engine/spec"
	"github.com/voxflow/voxflow/stages"
)

// inputKey is what one input artifact contributes to a key: its content,
// and the provenance a stage may read (stages name networks by the
// producing stage and tell ROIs apart by labels).
type inputKey struct {
	Stage  string            `json:"stage"`
	Output string            `json:"output,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
	Digest string            `json:"digest"`
}

// keyMaterial is everything a stage instance's outputs may depend on.
type keyMaterial struct {
	Kind   string                `json:"kind"`
	Impl   string                `json:"impl"`
	Params map[string]any        `json:"params"`
	Labels map[string]string     `json:"labels,omitempty"`
	Inputs map[string][]inputKey `json:"inputs"`
}

// Key is a stage instance's cache key with the canonical encodings that
// made it, kept so that `plan` can explain a changed key.
type Key struct {
	Digest cache.Digest
	Params string // canonical JSON of the params
	Inputs string // canonical JSON of the inputs (port -> artifacts)
}

// ComputeKey derives the key of one instance of kind with the given params,
// labels and input artifacts (whose Digest fields must be set).
func ComputeKey(kind *Kind, params stages.Params, labels map[string]string, inputs map[string][]stages.Artifact) (Key, error) {
	m := keyMaterial{Kind: kind.Desc.Kind, Impl: kind.Impl, Params: params, Labels: labels, Inputs: map[string][]inputKey{}}
	for port, arts := range inputs {
		ks := make([]inputKey, len(arts))
		for i, a := range arts {
			ks[i] = inputKey{Stage: a.Stage, Output: a.Output, Labels: a.Labels, Digest: a.Digest}
		}
		m.Inputs[port] = ks
	}
	p, err := spec.CanonicalJSON(map[string]any(params))
	if err != nil {
		return Key{}, fmt.Errorf("encode params: %w", err)
	}
	in, err := spec.CanonicalJSON(toPlain(m.Inputs))
	if err != nil {
		return Key{}, fmt.Errorf("encode inputs: %w", err)
	}
	all, err := spec.CanonicalJSON(map[string]any{
		"kind": m.Kind, "impl": m.Impl, "params": json.RawMessage(p),
		"labels": toPlain(m.Labels), "inputs": json.RawMessage(in),
	})
	if err != nil {
		return Key{}, fmt.Errorf("encode key: %w", err)
	}
	return Key{Digest: cache.HashBytes(all), Params: string(p), Inputs: string(in)}, nil
}

// toPlain round-trips v through encoding/json so that CanonicalJSON sees
// only plain maps, slices and scalars.
func toPlain(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("toPlain: %v", err)) // only called on JSON-safe engine types
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		panic(fmt.Sprintf("toPlain: %v", err))
	}
	return out
}

// paramDiff explains how two canonical param encodings differ, one entry
// per changed param ("param temperature 0.1 -> 0.05").
func paramDiff(oldJSON, newJSON string) []string {
	var o, n map[string]any
	if json.Unmarshal([]byte(oldJSON), &o) != nil || json.Unmarshal([]byte(newJSON), &n) != nil {
		return []string{"params changed"}
	}
	names := map[string]bool{}
	for k := range o {
		names[k] = true
	}
	for k := range n {
		names[k] = true
	}
	keys := make([]string, 0, len(names))
	for k := range names {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		ov, ook := o[k]
		nv, nok := n[k]
		switch {
		case !ook:
			out = append(out, fmt.Sprintf("param %s added (%s)", k, short(nv)))
		case !nok:
			out = append(out, fmt.Sprintf("param %s removed (was %s)", k, short(ov)))
		case short(ov) != short(nv):
			out = append(out, fmt.Sprintf("param %s %s -> %s", k, short(ov), short(nv)))
		}
	}
	return out
}

// inputDiff explains which input ports changed between two canonical
// input encodings.
func inputDiff(oldJSON, newJSON string) []string {
	var o, n map[string]any
	if json.Unmarshal([]byte(oldJSON), &o) != nil || json.Unmarshal([]byte(newJSON), &n) != nil {
		return []string{"inputs changed"}
	}
	names := map[string]bool{}
	for k := range o {
		names[k] = true
	}
	for k := range n {
		names[k] = true
	}
	keys := make([]string, 0, len(names))
	for k := range names {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		if short(o[k]) != short(n[k]) {
			out = append(out, fmt.Sprintf("input %s changed", k))
		}
	}
	return out
}

// short renders a plain value compactly for reasons and tables.
func short(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	s := string(b)
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}
