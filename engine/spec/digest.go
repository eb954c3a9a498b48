package spec

import (
	"encoding/hex"

	"github.com/zeebo/blake3"

	"github.com/voxflow/voxflow/stages"
)

// digest hashes the effective spec: what decides what runs, not how it is
// described.
func digest(s *Spec, errs *ErrorList) string {
	stagesOut := make([]any, 0, len(s.Stages))
	for _, st := range s.Stages {
		inputs := map[string]any{}
		for _, in := range st.Inputs {
			refs := make([]any, len(in.Refs))
			for i, r := range in.Refs {
				refs[i] = r.String()
			}
			inputs[in.Port] = refs
		}
		var foreach any = st.ForeachFrom
		if st.ForeachFrom == "" {
			keys := make([]any, len(st.Foreach))
			for i, k := range st.Foreach {
				key := map[string]any{"name": k.Name, "values": k.Values}
				if sel := k.Select; sel != nil {
					key["select"] = map[string]any{"mode": sel.Mode, "k": sel.K, "above": sel.Threshold, "by": sel.By}
				}
				keys[i] = key
			}
			foreach = keys
		}
		stagesOut = append(stagesOut, map[string]any{
			"name": st.Name, "uses": st.Uses, "inputs": inputs, "with": st.With,
			"foreach": foreach, "retries": st.Retries, "timeout": int64(st.Timeout),
			"isolate": st.Isolate, "executor": st.ExecOptions,
			"resources": map[string]any{"cpus": st.Resources.CPUs, "memory_mb": st.Resources.MemoryMB, "gpus": st.Resources.GPUs},
		})
	}
	eff := map[string]any{
		"name": s.Name, "params": s.Params, "isolate": s.Isolate,
		"executor": s.Executor, "plugins": s.Plugins, "stages": stagesOut,
	}
	data, err := stages.EncodeValue(eff)
	if err != nil {
		errs.add(s.Pos, "cannot compute the spec digest: %s", err)
		return ""
	}
	sum := blake3.Sum256(data)
	return hex.EncodeToString(sum[:])
}
