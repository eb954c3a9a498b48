//go:build opprofile

// This driver imports numerics/network (which imports this package), so it
// sits behind a build tag: ordinary test runs of this package never depend
// on the network package compiling. Run it with
//
//	VOXFLOW_OPPROFILE="alexnet-mini train 32 5" go test -tags opprofile -run '^TestOpProfile$' ./numerics/accel/

package accel_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/voxflow/voxflow/numerics/accel"
	"github.com/voxflow/voxflow/numerics/network"
)

// opProfileEnv asks TestOpProfile for a per-op profile of a network step:
// "arch phase batch steps", e.g. "alexnet-mini train 32 3" (phase train or
// forward). The test does nothing without it.
const opProfileEnv = "VOXFLOW_OPPROFILE"

// TestOpProfile prints which graph nodes (op type + shapes) an AlexNet or
// alexnet-mini step spends its time in on the go backend, one op at a
// time. The training step is Fit's: loss and gradients of every parameter
// (AdamW runs on the host and is not part of the graph).
func TestOpProfile(t *testing.T) {
	spec := os.Getenv(opProfileEnv)
	if spec == "" {
		t.Skipf("set %s=\"arch train|forward batch steps\" to profile", opProfileEnv)
	}
	var arch, phase string
	var batch, steps int
	if _, err := fmt.Sscan(spec, &arch, &phase, &batch, &steps); err != nil {
		t.Fatalf("%s=%q: %v", opProfileEnv, spec, err)
	}
	cfg, err := network.ConfigFor(arch, 1000)
	if err != nil {
		t.Fatal(err)
	}
	stats, err := accel.ProfileOps(accel.Config{}, func(backend backends.Backend, reset func()) error {
		return runSteps(backend, cfg, phase, batch, steps, reset)
	})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("%s %s batch %d (first step, with compilation, excluded)\n%s", arch, phase, batch,
		accel.FormatOpStats(stats, steps, 40))
}

// runSteps builds the step graph, runs it once to compile it and fill the
// buffer pools, calls reset, and runs it steps more times.
func runSteps(backend backends.Backend, cfg network.Config, phase string, batch, steps int, reset func()) error {
	specs := cfg.Params()
	np := len(specs)
	rng := rand.New(rand.NewPCG(1, 2))
	w := cfg.InitWeights(1)
	args := make([]any, 0, np+4)
	for _, p := range specs {
		args = append(args, tensors.FromFlatDataAndDimensions(w[p.Name].Data, p.Shape...))
	}
	s := cfg.ImageSize
	imgs := make([]uint8, batch*3*s*s)
	for i := range imgs {
		imgs[i] = uint8(rng.IntN(256))
	}
	args = append(args, tensors.FromFlatDataAndDimensions(imgs, batch, 3, s, s))
	params := func(in []*Node) map[string]*Node {
		p := map[string]*Node{}
		for i, sp := range specs {
			p[sp.Name] = in[i]
		}
		return p
	}
	var exe *Exec
	var err error
	if phase == "train" {
		labels := make([]int32, batch)
		for i := range labels {
			labels[i] = int32(i % cfg.NumClasses)
		}
		args = append(args, tensors.FromFlatDataAndDimensions(labels, batch))
		for _, m := range network.DropoutMasks(rng, cfg, batch, 0.5) {
			args = append(args, m)
		}
		exe, err = NewExec(backend, func(in []*Node) []*Node {
			logits, _ := cfg.Forward(params(in), network.Normalize(in[np]), in[np+2:np+4], "")
			loss := network.CrossEntropy(logits, in[np+1])
			return append(Gradient(loss, in[:np]...), loss)
		})
	} else {
		exe, err = NewExec(backend, func(in []*Node) []*Node {
			_, out := cfg.Forward(params(in), network.Normalize(in[np]), nil, "output")
			return []*Node{out}
		})
	}
	if err != nil {
		return err
	}
	defer exe.Finalize()
	for i := range steps + 1 {
		if i == 1 {
			reset()
		}
		outs, err := exe.Exec(args...)
		if err != nil {
			return err
		}
		for _, o := range outs {
			o.FinalizeAll()
		}
	}
	return nil
}
