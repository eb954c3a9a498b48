package network

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"

	"github.com/voxflow/voxflow/numerics/accel"
)

// Backend names accepted by NewBackend.
const (
	BackendGo  = accel.BackendGo
	BackendXLA = accel.BackendXLA
)

// NewBackend returns the compute backend called name:
// the accelerated pure-Go backend ("go") or XLA ("xla", which needs a PJRT
// plugin; the error says what to install).
func NewBackend(name string) (backends.Backend, error) {
	b, err := accel.New(accel.Config{Backend: name})
	if err != nil {
		return nil, fmt.Errorf("backend %q: %w", name, err)
	}
	return b, nil
}

// BackendT is gomlx's backend interface, re-exported so callers need
// not import gomlx to pass one around.
type BackendT = backends.Backend
