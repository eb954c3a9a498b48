package engine

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/voxflow/voxflow/cache"
	"github.com/voxflow/voxflow/engine/spec"
	"github.com/voxflow/voxflow/stages"
	"github.com/voxflow/voxflow/stages/command"
)

// identifiedStage gives a builtin stage a code identity, as
// stages/builtin does from impl_gen.go.
type identifiedStage struct {
	stages.Stage
	id string
}

func (s identifiedStage) Identity() string { return s.id }

// TestPlanNamesTheKindWhoseCodeChanged runs a spec with one build of the
// command kind, then plans it with a build whose code digest differs: the
// instance reruns and plan names the kind and both short digests. The same
// digest keeps it cached.
func TestPlanNamesTheKindWhoseCodeChanged(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	specPath := filepath.Join(dir, "impl.yaml")
	if err := os.WriteFile(specPath, []byte("name: impl\nstages:\n  a:\n    uses: command\n    with: {cmd: 'echo a > a.txt', outs: [a.txt]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	store, err := cache.Open(ctx, filepath.Join(dir, ".voxflow"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	load := func(identity string) *Project {
		t.Helper()
		reg := NewRegistry([]stages.Stage{identifiedStage{Stage: command.New(), id: identity}}, nil)
		p, err := Load(ctx, reg, specPath, spec.Options{})
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		return p
	}
	oldID, newID := strings.Repeat("a1", 32), strings.Repeat("b2", 32)
	res, err := (&Runner{Store: store, Display: discardDisplay{}}).Run(ctx, load(oldID), RunOptions{Jobs: 1, SpecPath: specPath})
	if err != nil || res.Executed != 1 {
		t.Fatalf("first run: %+v, %v; want one instance executed", res, err)
	}

	items, err := Plan(ctx, store, load(oldID), nil)
	if err != nil || len(items) != 1 || items[0].Action != ActionCached {
		t.Fatalf("plan with the same code: %+v, %v; want cached", items, err)
	}
	items, err = Plan(ctx, store, load(newID), nil)
	if err != nil || len(items) != 1 {
		t.Fatalf("plan with changed code: %+v, %v", items, err)
	}
	want := "implementation changed: command (a1a1a1a1a1a1 -> b2b2b2b2b2b2)"
	if items[0].Action != ActionRun || !slices.Contains(items[0].Reasons, want) {
		t.Fatalf("plan with changed code: %s %q; want run because %q", items[0].Action, items[0].Reasons, want)
	}
}

// TestImplChangedWording covers the implementation strings plan may
// compare: builtin identities, plugin digests, and the older builtin
// format that carried no digest.
func TestImplChangedWording(t *testing.T) {
	a, b := strings.Repeat("a", 64), strings.Repeat("b", 64)
	for _, c := range []struct{ kind, old, new, want string }{
		{"ridge", "builtin:ridge:1:" + a, "builtin:ridge:1:" + b, "implementation changed: ridge (aaaaaaaaaaaa -> bbbbbbbbbbbb)"},
		{"pca", "plugin:" + a + ":pca:1", "plugin:" + b + ":pca:1", "implementation changed: pca (aaaaaaaaaaaa -> bbbbbbbbbbbb)"},
		{"ridge", "builtin:0.1.0:ridge:1", "builtin:ridge:1:" + b, "implementation changed: ridge (builtin:0.1.0:ridge:1 -> builtin:ridge:1:bbbbbbbbbbbb)"},
		{"ridge", "builtin:ridge:1:" + a, "builtin:ridge:2:" + a, "implementation changed: ridge (builtin:ridge:1:aaaaaaaaaaaa -> builtin:ridge:2:aaaaaaaaaaaa)"},
	} {
		if got := implChanged(c.kind, c.old, c.new); got != c.want {
			t.Errorf("implChanged(%s, %s, %s) = %q; want %q", c.kind, c.old, c.new, got, c.want)
		}
	}
}
