// Package python holds, as Go tests, the checks of voxflow's Python side:
// the plugin SDK (voxflow_plugin) against the Go host, and voxflow-torch
// against the Go kinds (schemas, one training step, layer outputs,
// per-step overhead). The Python code itself lives beside this file.
package python
