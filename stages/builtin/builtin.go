// Package builtin lists the stage kinds compiled into voxflow.
package builtin

import (
	"github.com/voxflow/voxflow/stages"
	"github.com/voxflow/voxflow/stages/command"
	"github.com/voxflow/voxflow/stages/data"
	"github.com/voxflow/voxflow/stages/features"
	"github.com/voxflow/voxflow/stages/pretrain"
	"github.com/voxflow/voxflow/stages/probe"
	"github.com/voxflow/voxflow/stages/report"
	"github.com/voxflow/voxflow/stages/ridge"
	"github.com/voxflow/voxflow/stages/tunecl"
	"github.com/voxflow/voxflow/stages/tunemse"
)

// Stages returns a fresh instance of every builtin stage kind.
func Stages() []stages.Stage {
	return []stages.Stage{
		command.New(),
		data.New(),
		pretrain.New(),
		tunecl.New(),
		tunemse.New(),
		features.New(),
		ridge.New(),
		probe.New(),
		report.New(),
	}
}
