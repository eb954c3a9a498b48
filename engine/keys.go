package engine

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/zeebo/blake3"

	"github.com/voxflow/voxflow/cache"
	"github.com/voxflow/voxflow/engine/spec"
	"github.com/voxflow/voxflow/stages"
)

// Key is a stage instance's cache key with the canonical encodings that
// made it, kept so that `plan` can explain a changed key.
type Key struct {
	Digest cache.Digest
	Params string // canonical JSON of the params
	Inputs string // canonical JSON of the inputs (port -> artifacts)
}

// keyDomain versions the key derivation: changing it invalidates every
// cache, so it changes only with the derivation itself. v2: the content of
// path params (outside inputs) enters the key.
const keyDomain = "voxflow-key-v2"

// ComputeKey derives the key of one instance of kind with the given params,
// labels and input artifacts (whose Digest fields must be set). Everything
// a stage may read goes in: its kind and implementation, its params and
// foreach labels, and for each input the content digest plus the
// provenance stages use (the producing stage names a network, labels tell
// ROIs apart). files are the fingerprints of the paths that path params
// name (see fingerprint.go): they enter the inputs encoding as "param:<name>"
// ports, so a file edited under a data root changes the key.
func ComputeKey(kind *Kind, params stages.Params, labels map[string]string, inputs map[string][]stages.Artifact, files []PathInput) (Key, error) {
	p, err := spec.CanonicalJSON(map[string]any(params))
	if err != nil {
		return Key{}, fmt.Errorf("encode params: %w", err)
	}
	ports := make(map[string]any, len(inputs))
	for port, arts := range inputs {
		list := make([]any, len(arts))
		for i, a := range arts {
			m := map[string]any{"stage": a.Stage, "digest": a.Digest}
			if a.Output != "" {
				m["output"] = a.Output
			}
			if len(a.Labels) > 0 {
				m["labels"] = stringMap(a.Labels)
			}
			list[i] = m
		}
		ports[port] = list
	}
	for port, list := range pathPorts(files) {
		ports[port] = list
	}
	in, err := spec.CanonicalJSON(ports)
	if err != nil {
		return Key{}, fmt.Errorf("encode inputs: %w", err)
	}
	lb, err := spec.CanonicalJSON(stringMap(labels))
	if err != nil {
		return Key{}, fmt.Errorf("encode labels: %w", err)
	}
	h := blake3.New()
	for _, part := range [][]byte{[]byte(keyDomain), []byte(kind.Desc.Kind), []byte(kind.Impl), lb, p, in} {
		// Length prefixes keep the concatenation unambiguous.
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write(part)
	}
	return Key{Digest: cache.Digest(hex.EncodeToString(h.Sum(nil))), Params: string(p), Inputs: string(in)}, nil
}

func stringMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
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
// input encodings; the pseudo ports of path params are left to pathDiff.
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
		if strings.HasPrefix(k, pathPortPrefix) {
			continue // pathDiff names the files
		}
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
