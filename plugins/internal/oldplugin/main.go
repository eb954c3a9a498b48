// Command oldplugin is a plugin built for another protocol version, as if
// compiled against a future voxflow.
package main

import (
	"github.com/hashicorp/go-plugin"

	"github.com/voxflow/voxflow/plugins"
	"github.com/voxflow/voxflow/plugins/internal/teststages"
)

func main() {
	hs := plugins.HandshakeConfig()
	hs.ProtocolVersion = plugins.ProtocolVersion + 98
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: hs,
		Plugins:         plugin.PluginSet{plugins.PluginName: &plugins.GRPCPlugin{Stages: teststages.All()}},
		GRPCServer:      plugin.DefaultGRPCServer,
	})
}
