// Package plugins runs stage kinds out of process through
// hashicorp/go-plugin over gRPC: the host side the engine uses (Open,
// Client.Stages) and the server side a plugin's main calls (Serve).
//
// A plugin is any executable whose main is one call:
//
//	func main() { plugins.Serve(mystage.New()) }
//
// The host starts it, checks the handshake (magic cookie and protocol
// version), asks it to describe its kinds, and then hands it stage
// instances to run. Artifacts cross the wire as paths, never bytes, so host
// and plugin must share a filesystem. Progress updates and log lines stream
// back while the stage runs; cancelling the caller's context cancels the
// stage's context inside the plugin.
//
// The protocol lives in pluginpb/stage.proto; `make proto` regenerates the
// Go code from it.
package plugins

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/voxflow/voxflow/plugins/pluginpb"
	"github.com/voxflow/voxflow/stages"
)

// ProtocolVersion is the version of the wire protocol in
// pluginpb/stage.proto. A host refuses a plugin built for another version,
// naming both, because a silently mismatched plugin would corrupt results.
const ProtocolVersion = 1

// PluginName is the name under which a plugin process serves its stages in
// go-plugin's plugin set.
const PluginName = "stages"

// HandshakeConfig returns the handshake a voxflow host and plugin share.
// The magic cookie is not a secret: it only stops a user from running a
// plugin binary by hand, where it would wait for a host that never comes.
func HandshakeConfig() plugin.HandshakeConfig {
	return plugin.HandshakeConfig{
		ProtocolVersion:  ProtocolVersion,
		MagicCookieKey:   "VOXFLOW_PLUGIN_MAGIC_COOKIE",
		MagicCookieValue: "8c1f6e2a-voxflow-stage-plugin",
	}
}

// GRPCPlugin is the go-plugin glue for the stage protocol. On the plugin
// side Stages holds the kinds served; on the host side it is empty.
// Exported so that a plugin may pass it to plugin.Serve itself when it needs
// a custom ServeConfig; most plugins call Serve instead.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Stages []stages.Stage
}

// GRPCServer registers the stage service on the plugin's gRPC server.
func (p *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	srv, err := newServer(p.Stages)
	if err != nil {
		return err
	}
	pluginpb.RegisterStagesServer(s, srv)
	return nil
}

// GRPCClient returns the host's client for the stage service.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return pluginpb.NewStagesClient(c), nil
}
