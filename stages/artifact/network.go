package artifact

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/voxflow/voxflow/internal/jsonfile"
	"github.com/voxflow/voxflow/numerics/network"
)

// CurveFile is the training curve a training kind (pretrain, tune-cl,
// tune-mse) writes beside its network; its structure is Curve.
const CurveFile = "curve.json"

// Curve is a training run's curve.json.
type Curve struct {
	Epochs      []network.EpochStats `json:"epochs"`
	BestEpoch   int                  `json:"best_epoch"` // 1-based; 0 when no epoch ran
	BestValLoss float64              `json:"best_val_loss"`
	Stopped     string               `json:"stopped"` // why training ended: epochs or patience
}

// ReadCurve reads a training run's curve (dir/curve.json).
func ReadCurve(dir string) (*Curve, error) {
	var c Curve
	if err := jsonfile.Read(filepath.Join(dir, CurveFile), &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// LoadNet reads a network artifact directory (config.json +
// weights.safetensors) and checks the weights fit the config. Tensors the
// config does not declare are dropped.
func LoadNet(dir string) (network.Config, network.Weights, error) {
	cfg, err := network.LoadConfig(dir)
	if err != nil {
		return network.Config{}, nil, err
	}
	w, _, err := network.ReadSafetensors(filepath.Join(dir, network.WeightsFile))
	if err != nil {
		return network.Config{}, nil, err
	}
	// Extra tensors (torch's num_batches_tracked and the like) are dropped
	// rather than refused, so that a torch state_dict loads as it is.
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

// SaveNet writes a network artifact directory: config.json and
// weights.safetensors holding only the network's own parameters (a head
// trained with it stays out; see training.RunOutputs.Head).
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
