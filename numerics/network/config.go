// Package network holds voxflow's networks and the numerics to train them:
// AlexNet and alexnet-mini in gomlx with torchvision's layout and parameter
// names, safetensors import and export, the contrastive (CL) head and loss of
// the poster, and a small training loop (AdamW, warm-up + cosine learning
// rate, early stopping on validation loss, best checkpoint).
//
// Parameters are plain named host tensors (Weights) rather than gomlx
// context variables so that a safetensors file written by
// torch's state_dict maps onto them one to one, and so that one compiled
// training step can be reused across epochs with explicit state.
package network

import (
	"fmt"
	"path/filepath"

	"github.com/voxflow/voxflow/internal/jsonfile"
)

// Architecture names accepted in Config.Arch.
const (
	ArchAlexNet = "alexnet"
	ArchMini    = "alexnet-mini"
)

// File names inside a network artifact directory.
const (
	WeightsFile = "weights.safetensors"
	ConfigFile  = "config.json"
)

// Config describes one AlexNet-topology network. It is stored as config.json
// beside the weights in a network artifact.
type Config struct {
	Arch       string `json:"arch"`
	ImageSize  int    `json:"image_size"`
	NumClasses int    `json:"num_classes"`
	// Channels are the output widths of the five conv layers
	// (features.0, .3, .6, .8, .10).
	Channels [5]int `json:"channels"`
	// Hidden are the widths of classifier.1 and classifier.4.
	Hidden [2]int `json:"hidden"`
	// Conv1Stride is the stride of features.0 (4 in AlexNet).
	Conv1Stride int `json:"conv1_stride"`
	// PoolSize is the output side of the adaptive average pool (6 in
	// AlexNet); the classifier's input is Channels[4]*PoolSize^2.
	PoolSize int `json:"pool_size"`
	// Extra carries free-form provenance (source weights, training stage).
	Extra map[string]any `json:"extra,omitempty"`
}

// AlexNet returns torchvision's AlexNet: 3x224x224 -> numClasses.
func AlexNet(numClasses int) Config {
	return Config{Arch: ArchAlexNet, ImageSize: 224, NumClasses: numClasses,
		Channels: [5]int{64, 192, 384, 256, 256}, Hidden: [2]int{4096, 4096},
		Conv1Stride: 4, PoolSize: 6}
}

// Mini returns alexnet-mini: AlexNet's layer sequence for 64x64 inputs with
// conv widths 16-48-96-64-64 and 256-256 hidden units. Conv1 uses stride 2
// (not 4) so that the last feature map is 2x2 rather than 1x1, and the
// adaptive pool keeps that 2x2 (classifier input 256).
func Mini(numClasses int) Config {
	return Config{Arch: ArchMini, ImageSize: 64, NumClasses: numClasses,
		Channels: [5]int{16, 48, 96, 64, 64}, Hidden: [2]int{256, 256},
		Conv1Stride: 2, PoolSize: 2}
}

// ConfigFor returns the default config of a named architecture.
func ConfigFor(arch string, numClasses int) (Config, error) {
	switch arch {
	case ArchAlexNet:
		return AlexNet(numClasses), nil
	case ArchMini:
		return Mini(numClasses), nil
	}
	return Config{}, fmt.Errorf("arch %q: want %q or %q", arch, ArchAlexNet, ArchMini)
}

// Validate checks that the config describes a buildable network.
func (c Config) Validate() error {
	if c.ImageSize < 16 || c.NumClasses < 1 || c.Conv1Stride < 1 || c.PoolSize < 1 {
		return fmt.Errorf("network config %+v: image_size >= 16, num_classes, conv1_stride and pool_size >= 1 expected", c)
	}
	for i, ch := range c.Channels {
		if ch < 1 {
			return fmt.Errorf("network config: channels[%d] = %d, want >= 1", i, ch)
		}
	}
	if c.Hidden[0] < 1 || c.Hidden[1] < 1 {
		return fmt.Errorf("network config: hidden %v, want >= 1", c.Hidden)
	}
	if s := c.finalSpatial(); s < 1 {
		return fmt.Errorf("network config: image_size %d too small for the conv stack (final map %d)", c.ImageSize, s)
	}
	return nil
}

// finalSpatial is the side of the last feature map (after features.12).
func (c Config) finalSpatial() int {
	s := (c.ImageSize+4-11)/c.Conv1Stride + 1
	s = (s-3)/2 + 1
	s = (s-3)/2 + 1 // conv2 keeps size (k5 p2)
	s = (s-3)/2 + 1 // conv3..5 keep size (k3 p1)
	return s
}

// LoadConfig reads config.json from a network artifact directory.
func LoadConfig(dir string) (Config, error) {
	path := filepath.Join(dir, ConfigFile)
	var c Config
	if err := jsonfile.Read(path, &c); err != nil {
		return Config{}, fmt.Errorf("load net config: %w", err)
	}
	// Older or hand-written configs may carry only arch/image_size/num_classes.
	if c.Channels == [5]int{} {
		def, err := ConfigFor(c.Arch, c.NumClasses)
		if err != nil {
			return Config{}, fmt.Errorf("%s: %w", path, err)
		}
		size := c.ImageSize
		extra := c.Extra
		c = def
		c.Extra = extra
		if size > 0 {
			c.ImageSize = size
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Save writes c as dir/config.json.
func (c Config) Save(dir string) error {
	return jsonfile.Write(filepath.Join(dir, ConfigFile), c)
}
