package accel

import (
	"fmt"
	"path/filepath"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/xla"
)

// newXLA opens gomlx's XLA backend without its auto-installer: stages run
// offline and on cluster nodes, where a download would fail or surprise.
func newXLA(cfg Config) (backends.Backend, error) {
	xla.EnableAutoInstall(false)
	plugin := cfg.XLAPlugin
	if !filepath.IsAbs(plugin) {
		found := xla.GetAvailablePlugins()
		if len(found) == 0 {
			return nil, fmt.Errorf("accel: backend %q: no PJRT plugin found: %s", BackendXLA, pjrtHint())
		}
		if plugin == "" {
			plugin = found[0]
		}
	}
	b, err := xla.New(plugin)
	if err != nil {
		return nil, fmt.Errorf("accel: backend %q with plugin %q: %w; %s", BackendXLA, plugin, err, pjrtHint())
	}
	return b, nil
}
