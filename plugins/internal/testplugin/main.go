// Command testplugin serves the test stage kinds as a voxflow plugin.
package main

import (
	"github.com/voxflow/voxflow/plugins"
	"github.com/voxflow/voxflow/plugins/internal/teststages"
)

func main() { plugins.Serve(teststages.All()...) }
