package spec

import (
	"github.com/voxflow/voxflow/stages"
)

func ptr(f float64) *float64 { return &f }

// testKinds is a fixture: two small made-up kinds that exercise every
// param type, bounds, enums, and single/many/optional ports.
func testKinds() Kinds {
	return KindsOf(
		stages.Description{
			Kind: "gen", Version: "1", Isolate: "process",
			Params: []stages.ParamSpec{
				{Name: "n", Type: stages.TypeInt, Default: 1, Min: ptr(0), Max: ptr(100)},
				{Name: "scale", Type: stages.TypeFloat, Default: 1.0, Min: ptr(0)},
				{Name: "mode", Type: stages.TypeString, Default: "fast", Enum: []string{"fast", "slow"}},
				{Name: "subject", Type: stages.TypeString, Default: ""},
				{Name: "roi", Type: stages.TypeString, Default: ""},
				{Name: "seed", Type: stages.TypeInt, Default: 0},
				{Name: "alphas", Type: stages.TypeFloats, Default: []float64{1}},
				{Name: "sizes", Type: stages.TypeInts},
				{Name: "tags", Type: stages.TypeStrings, Default: []string{}},
				{Name: "verbose", Type: stages.TypeBool, Default: false},
				{Name: "opts", Type: stages.TypeMap},
				{Name: "note", Type: stages.TypeString, Default: ""},
			},
			Inputs:  []stages.PortSpec{{Name: "seed_from", Optional: true}},
			Outputs: []stages.PortSpec{{Name: "out"}, {Name: "aux"}},
		},
		stages.Description{
			Kind: "sum", Version: "1",
			Params: []stages.ParamSpec{
				{Name: "op", Type: stages.TypeString, Required: true, Enum: []string{"add", "mul"}},
				{Name: "subject", Type: stages.TypeString, Default: ""},
				{Name: "weight", Type: stages.TypeFloat, Default: 0.5, Min: ptr(0), Max: ptr(1)},
			},
			Inputs: []stages.PortSpec{
				{Name: "xs", Many: true},
				{Name: "base", Optional: true},
			},
			Outputs: []stages.PortSpec{{Name: "total"}},
		},
		stages.Description{
			Kind: "command", Version: "1",
			Params: []stages.ParamSpec{
				{Name: "cmd", Type: stages.TypeString, Required: true},
				{Name: "outs", Type: stages.TypeStrings, Default: []any{}},
				{Name: "env", Type: stages.TypeMap, Default: map[string]any{}},
				{Name: "shell", Type: stages.TypeString, Default: "bash"},
			},
			Inputs: []stages.PortSpec{{Name: "deps", Many: true, Optional: true}},
		},
	)
}

var knownTestKinds = []string{"command", "gen", "sum"}

type stagesDescription = stages.Description
