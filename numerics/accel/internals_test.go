package accel

import (
	"os"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/backends"
)

// TestGomlxInternals fails loudly when a gomlx upgrade moves the internals
// internals.go relies on: update GomlxVersion and the mirrors together, or
// drop overrides gomlx now implements itself.
func TestGomlxInternals(t *testing.T) {
	// Test binaries carry no module versions, so read go.mod itself.
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatalf("read go.mod: %v", err)
	}
	found := false
	for _, line := range strings.Split(string(mod), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "github.com/gomlx/gomlx" || len(f) >= 3 && f[0] == "require" && f[1] == "github.com/gomlx/gomlx" {
			v := f[len(f)-1]
			if f[0] == "github.com/gomlx/gomlx" {
				v = f[1]
			}
			found = true
			if v != GomlxVersion {
				t.Fatalf("go.mod requires gomlx %s but numerics/accel was written against gomlx %s: re-check internals.go "+
					"(Node/Buffer mirrors, linknamed nodeExecutors and newNode) before bumping", v, GomlxVersion)
			}
		}
	}
	if !found {
		t.Fatalf("go.mod has no github.com/gomlx/gomlx requirement")
	}
	if err := checkInternals(); err != nil {
		t.Fatal(err)
	}
	if installErr != nil {
		t.Fatalf("patch not installed: %v", installErr)
	}
	for _, op := range addedOps {
		if sgNodeExecutors[op] == nil {
			t.Fatalf("executor for %s not installed in simplego's table (gomlx %s)", op, GomlxVersion)
		}
	}
	for _, op := range []backends.OpType{backends.OpTypeDotGeneral, backends.OpTypeConvGeneral, backends.OpTypeReduceWindow} {
		if stockExecutors[op] == nil {
			t.Fatalf("stock simplego executor for %s missing (gomlx %s internals changed)", op, GomlxVersion)
		}
	}
}
