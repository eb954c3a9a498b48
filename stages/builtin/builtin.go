// Package builtin lists the stage kinds compiled into voxflow.
package builtin

import (
	"github.com/voxflow/voxflow/stages"
	"github.com/voxflow/voxflow/stages/command"
)

// Stages returns a fresh instance of every builtin stage kind.
func Stages() []stages.Stage {
	return []stages.Stage{
		command.New(),
	}
}
