package plugins

import (
	"fmt"

	"github.com/voxflow/voxflow/plugins/pluginpb"
	"github.com/voxflow/voxflow/stages"
)

// Params and param defaults cross the wire as stages.EncodeValue JSON, the
// form keys hash, so a stage in a plugin gets the values (int64 or float64,
// -0, nested maps) an inline stage would.

func descriptionToPB(d stages.Description) (*pluginpb.Description, error) {
	out := &pluginpb.Description{
		Kind:    d.Kind,
		Version: d.Version,
		Doc:     d.Doc,
		Isolate: d.Isolate,
		Inputs:  portsToPB(d.Inputs),
		Outputs: portsToPB(d.Outputs),
	}
	for _, p := range d.Params {
		pp := &pluginpb.ParamSpec{
			Name:     p.Name,
			Type:     p.Type,
			Required: p.Required,
			Doc:      p.Doc,
			Min:      p.Min,
			Max:      p.Max,
			Enum:     p.Enum,
			NotPaths: p.NotPaths,
		}
		if p.Default != nil {
			js, err := stages.EncodeValue(p.Default)
			if err != nil {
				return nil, fmt.Errorf("kind %s: param %s default: %w", d.Kind, p.Name, err)
			}
			pp.DefaultJson = string(js)
		}
		out.Params = append(out.Params, pp)
	}
	return out, nil
}

func descriptionFromPB(d *pluginpb.Description) (stages.Description, error) {
	out := stages.Description{
		Kind:    d.GetKind(),
		Version: d.GetVersion(),
		Doc:     d.GetDoc(),
		Isolate: d.GetIsolate(),
		Inputs:  portsFromPB(d.GetInputs()),
		Outputs: portsFromPB(d.GetOutputs()),
	}
	for _, p := range d.GetParams() {
		def, err := stages.DecodeValue([]byte(p.GetDefaultJson()))
		if err != nil {
			return stages.Description{}, fmt.Errorf("kind %s: param %s default: %w", d.GetKind(), p.GetName(), err)
		}
		out.Params = append(out.Params, stages.ParamSpec{
			Name:     p.GetName(),
			Type:     p.GetType(),
			Default:  def,
			Required: p.GetRequired(),
			Doc:      p.GetDoc(),
			Min:      p.Min,
			Max:      p.Max,
			Enum:     p.GetEnum(),
			NotPaths: p.GetNotPaths(),
		})
	}
	return out, nil
}

func portsToPB(ps []stages.PortSpec) []*pluginpb.PortSpec {
	out := make([]*pluginpb.PortSpec, len(ps))
	for i, p := range ps {
		out[i] = &pluginpb.PortSpec{Name: p.Name, Doc: p.Doc, Many: p.Many, Optional: p.Optional}
	}
	return out
}

func portsFromPB(ps []*pluginpb.PortSpec) []stages.PortSpec {
	if len(ps) == 0 {
		return nil
	}
	out := make([]stages.PortSpec, len(ps))
	for i, p := range ps {
		out[i] = stages.PortSpec{Name: p.GetName(), Doc: p.GetDoc(), Many: p.GetMany(), Optional: p.GetOptional()}
	}
	return out
}

func requestToPB(kind string, r *stages.Request) (*pluginpb.RunRequest, error) {
	params, err := stages.EncodeValue(r.Params)
	if err != nil {
		return nil, fmt.Errorf("params of %s: %w", r.Instance, err)
	}
	out := &pluginpb.RunRequest{
		Kind:       kind,
		Instance:   r.Instance,
		ParamsJson: string(params),
		Labels:     r.Labels,
		OutDir:     r.OutDir,
		Protect:    r.Protect,
		Inputs:     make(map[string]*pluginpb.Artifacts, len(r.Inputs)),
		Resources: &pluginpb.Resources{
			Cpus:     int64(r.Resources.CPUs),
			MemoryMb: r.Resources.MemoryMB,
			Gpus:     int64(r.Resources.GPUs),
		},
	}
	for port, arts := range r.Inputs {
		list := &pluginpb.Artifacts{}
		for _, a := range arts {
			list.Items = append(list.Items, &pluginpb.Artifact{
				Path: a.Path, Stage: a.Stage, Output: a.Output, Labels: a.Labels, Digest: a.Digest,
			})
		}
		out.Inputs[port] = list
	}
	return out, nil
}

// requestFromPB builds the plugin side's stages.Request; Progress and Log
// are left for the caller to attach.
func requestFromPB(r *pluginpb.RunRequest) (*stages.Request, error) {
	raw, err := stages.DecodeValue([]byte(r.GetParamsJson()))
	if err != nil {
		return nil, fmt.Errorf("params of %s: %w", r.GetInstance(), err)
	}
	params := stages.Params{}
	if raw != nil {
		m, ok := raw.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("params of %s: have %T, want a JSON object", r.GetInstance(), raw)
		}
		params = m
	}
	out := &stages.Request{
		Instance: r.GetInstance(),
		Params:   params,
		Labels:   r.GetLabels(),
		OutDir:   r.GetOutDir(),
		Protect:  r.GetProtect(),
		Inputs:   make(map[string][]stages.Artifact, len(r.GetInputs())),
		Resources: stages.Resources{
			CPUs:     int(r.GetResources().GetCpus()),
			MemoryMB: r.GetResources().GetMemoryMb(),
			GPUs:     int(r.GetResources().GetGpus()),
		},
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	for port, list := range r.GetInputs() {
		arts := make([]stages.Artifact, 0, len(list.GetItems()))
		for _, a := range list.GetItems() {
			arts = append(arts, stages.Artifact{
				Path: a.GetPath(), Stage: a.GetStage(), Output: a.GetOutput(), Labels: a.GetLabels(), Digest: a.GetDigest(),
			})
		}
		out.Inputs[port] = arts
	}
	return out, nil
}
