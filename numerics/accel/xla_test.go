package accel

import (
	"strings"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
)

// TestXLABackend asks for the XLA backend with an empty plugin path: it
// must either say what to install or, where a PJRT plugin is installed
// system-wide, compute.
func TestXLABackend(t *testing.T) {
	t.Setenv(envPJRT, t.TempDir())
	b, err := New(Config{Backend: BackendXLA})
	if err != nil {
		if !strings.Contains(err.Error(), envPJRT) || !strings.Contains(err.Error(), "PJRT plugin") {
			t.Fatalf("error %q does not say which PJRT plugin to install or where to point %s", err, envPJRT)
		}
		return
	}
	defer b.Finalize()
	got, err := ExecOnce(b, func(x *Node) *Node { return AddScalar(x, 1) }, float32(2))
	if err != nil {
		t.Fatalf("xla backend %s: %v", b.Name(), err)
	}
	if v := got.Value().(float32); v != 3 {
		t.Fatalf("xla 2+1 = %g", v)
	}
}

func TestUnknownBackend(t *testing.T) {
	if _, err := New(Config{Backend: "tpu"}); err == nil || !strings.Contains(err.Error(), `"tpu"`) {
		t.Fatalf("New(tpu) error %v, expected one naming the unknown backend", err)
	}
}
