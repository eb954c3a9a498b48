// Command testplugin serves the test stage kinds as a voxflow plugin.
package main

import (
	"os"

	"github.com/voxflow/voxflow/plugins"
	"github.com/voxflow/voxflow/plugins/internal/teststages"
)

// buildNote is set with -ldflags "-X main.buildNote=..." by tests that need
// a binary with different bytes but the same behaviour.
var buildNote string

func main() {
	os.Setenv("VOXFLOW_TEST_BUILD_NOTE", buildNote)
	plugins.Serve(teststages.All()...)
}
