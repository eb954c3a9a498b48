// Package pluginpb holds the Go code generated from stage.proto, the gRPC
// protocol between the voxflow engine and a stage plugin process. Edit
// stage.proto and regenerate (see the Makefile); never edit the .pb.go
// files by hand.
package pluginpb
