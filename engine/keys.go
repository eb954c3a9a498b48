package engine

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/zeebo/blake3"

	"github.com/voxflow/voxflow/cache"
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
// path params (outside inputs) enters the key. v3: params, inputs and
// labels are encoded by the one plain-value codec (stages.EncodeValue),
// which keeps the sign of -0 where v2 hashed it as 0.
const keyDomain = "voxflow-key-v3"

// ComputeKey derives the key of one instance of kind with the given params,
// labels and input artifacts (whose Digest fields must be set). Everything
// a stage may read goes in: its kind and implementation, its params and
// foreach labels, and for each input the content digest plus the
// provenance stages use (the producing stage names a network, labels tell
// ROIs apart). files are the fingerprints of the paths that path params
// name (see fingerprint.go): they enter the inputs encoding as "param:<name>"
// ports, so a file edited under a data root changes the key.
func ComputeKey(kind *Kind, params stages.Params, labels map[string]string, inputs map[string][]stages.Artifact, files []PathInput) (Key, error) {
	p, err := stages.EncodeValue(params)
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
				m["labels"] = a.Labels
			}
			list[i] = m
		}
		ports[port] = list
	}
	for port, list := range pathPorts(files) {
		ports[port] = list
	}
	in, err := stages.EncodeValue(ports)
	if err != nil {
		return Key{}, fmt.Errorf("encode inputs: %w", err)
	}
	lb, err := stages.EncodeValue(labels)
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

// paramDiff explains how two canonical param encodings differ, one entry
// per changed param ("param temperature 0.1 -> 0.05").
func paramDiff(oldJSON, newJSON string) []string {
	o, ook := decodeObject(oldJSON)
	n, nok := decodeObject(newJSON)
	if !ook || !nok {
		return []string{"params changed"}
	}
	var out []string
	for _, k := range unionKeys(o, n) {
		ov, ook := o[k]
		nv, nok := n[k]
		switch {
		case !ook:
			out = append(out, fmt.Sprintf("param %s added (%s)", k, short(nv)))
		case !nok:
			out = append(out, fmt.Sprintf("param %s removed (was %s)", k, short(ov)))
		case !sameValue(ov, nv):
			os, ns := short(ov), short(nv)
			if os == ns {
				// Plain JSON hides what changed (1 -> 1.0, 0 -> -0); the
				// key's own encoding shows it.
				os, ns = canonShort(ov), canonShort(nv)
			}
			out = append(out, fmt.Sprintf("param %s %s -> %s", k, os, ns))
		}
	}
	return out
}

// inputDiff explains which input ports changed between two canonical
// input encodings; the pseudo ports of path params are left to pathDiff.
func inputDiff(oldJSON, newJSON string) []string {
	o, ook := decodeObject(oldJSON)
	n, nok := decodeObject(newJSON)
	if !ook || !nok {
		return []string{"inputs changed"}
	}
	var out []string
	for _, k := range unionKeys(o, n) {
		if strings.HasPrefix(k, pathPortPrefix) {
			continue // pathDiff names the files
		}
		if !sameValue(o[k], n[k]) {
			out = append(out, fmt.Sprintf("input %s changed", k))
		}
	}
	return out
}

// decodeObject reads a recorded canonical encoding of params or inputs;
// false when it is not a JSON object (or null).
func decodeObject(s string) (map[string]any, bool) {
	if strings.TrimSpace(s) == "" {
		return nil, false
	}
	v, err := stages.DecodeValue([]byte(s))
	if err != nil {
		return nil, false
	}
	if v == nil {
		return nil, true
	}
	m, ok := v.(map[string]any)
	return m, ok
}

// unionKeys returns the keys of a and b, sorted.
func unionKeys(a, b map[string]any) []string {
	keys := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// sameValue reports whether a and b are the same value to a key.
func sameValue(a, b any) bool {
	ea, errA := stages.EncodeValue(a)
	eb, errB := stages.EncodeValue(b)
	return errA == nil && errB == nil && bytes.Equal(ea, eb)
}

// canonShort renders a plain value in the key's encoding, cut as short
// cuts.
func canonShort(v any) string {
	b, err := stages.EncodeValue(v)
	if err != nil {
		return short(v)
	}
	return cut(string(b))
}

// short renders a plain value compactly for reasons and tables.
func short(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return cut(string(b))
}

// cut shortens s to 60 bytes for a table cell or a reason.
func cut(s string) string {
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

// ShortValue renders a plain value as compact JSON cut at 60 characters,
// the form plans, reasons and comparison tables show params in.
func ShortValue(v any) string { return short(v) }
