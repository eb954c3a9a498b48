package artifact

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/voxflow/voxflow/numerics/network"
)

func LoadNet(dir string) (network.Config, network.Weights, error) {
	cfg, err := network.LoadConfig(dir)
	if err != nil {
		return network.Config{}, nil, err
	}
	w, _, err := network.ReadSafetensors(filepath.Join(dir, network.WeightsFile))
	if err != nil {
		return network.Config{}, nil, err
	}
	// Extra tensors (torch's num_batches_tracked and the like) are dropped.
	net := network.Weights{}
	for _, p := range cfg.Params() {
		if t, ok := w[p.Name]; ok {
			net[p.Name] = t
		}
	}
	if err := network.CheckWeights(cfg.Params(), net); err != nil {
		return network.Config{}, nil, fmt.Errorf("%s: %w", filepath.Join(dir, network.WeightsFile), err)
	}
	return cfg, net, nil
}

func SaveNet(dir string, cfg network.Config, w network.Weights) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save net: %w", err)
	}
	net := network.Weights{}
	for _, p := range cfg.Params() {
		net[p.Name] = w[p.Name]
	}
	if err := network.CheckWeights(cfg.Params(), net); err != nil {
		return fmt.Errorf("save net %s: %w", dir, err)
	}
	if err := cfg.Save(dir); err != nil {
		return err
	}
	return network.WriteSafetensors(filepath.Join(dir, network.WeightsFile), net, map[string]string{"arch": cfg.Arch, "format": "pt"})
}
