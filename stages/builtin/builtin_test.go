package builtin

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/voxflow/voxflow/engine"
	"github.com/voxflow/voxflow/internal/implgen"
	"github.com/voxflow/voxflow/stages"
	"github.com/voxflow/voxflow/stages/ridge"
)

// TestImplDigestsAreCurrent recomputes every builtin kind's source digest
// and fails when impl_gen.go records another: someone changed a kind's code
// (or a package it imports, or a dependency version) without deciding
// whether cached results stay valid.
func TestImplDigestsAreCurrent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := implgen.Generate(ctx, ".")
	if err != nil {
		t.Fatalf("recomputing the implementation digests: %v", err)
	}
	stale := r.Stale()
	disk, err := os.ReadFile(implgen.GeneratedFile)
	if err != nil {
		t.Fatalf("reading the recorded digests: %v", err)
	}
	if len(stale) > 0 || !bytes.Equal(disk, r.Source) {
		t.Fatalf("stages/builtin/%s is stale (code changed in: %s).\n"+
			"run go generate ./stages/builtin (make generate): the changed kinds get new identities and their cached results are recomputed;\n"+
			"or, if the change cannot alter any output, declare it: go run ./internal/implgen/cmd/implgen -dir stages/builtin -neutral KIND -reason \"why\"",
			implgen.GeneratedFile, strings.Join(stale, ", "))
	}
}

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// TestEveryKindCarriesItsIdentity checks that each builtin stage reaches
// the engine with the identity recorded for its package, and that the
// identity is what the implementation string in cache keys carries.
func TestEveryKindCarriesItsIdentity(t *testing.T) {
	ids := identities()
	reg := engine.NewRegistry(Stages(), nil)
	seen := map[string]bool{}
	for _, s := range Stages() {
		d := s.Describe()
		id, ok := s.(engine.Identified)
		if !ok {
			t.Fatalf("builtin kind %s has no Identity method", d.Kind)
		}
		pkg := PackageOf(s)
		if want := ids[pkg].identity; id.Identity() != want || !hex64.MatchString(want) {
			t.Errorf("%s (%s): identity %q; want the recorded %q (64 hex digits)", d.Kind, pkg, id.Identity(), want)
		}
		k, ok := reg.Builtin(d.Kind)
		if !ok {
			t.Fatalf("registry lacks builtin kind %s", d.Kind)
		}
		if want := "builtin:" + d.Kind + ":" + d.Version + ":" + id.Identity(); k.Impl != want {
			t.Errorf("%s: Impl = %q; want %q", d.Kind, k.Impl, want)
		}
		seen[pkg] = true
	}
	for pkg := range ids {
		if !seen[pkg] {
			t.Errorf("impl_gen.go records %s, which Stages does not list", pkg)
		}
	}
}

// TestImplFollowsTheSourceDigest: two builds of ridge whose code digests
// differ give different implementation strings and so different cache keys
// for the same params and inputs.
func TestImplFollowsTheSourceDigest(t *testing.T) {
	key := func(identity string) (string, engine.Key) {
		reg := engine.NewRegistry([]stages.Stage{identified{Stage: ridge.New(), identity: identity}}, nil)
		k, _ := reg.Builtin("ridge")
		key, err := engine.ComputeKey(k, stages.Params{"alphas": []any{1.0}}, map[string]string{"subject": "subj01"}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return k.Impl, key
	}
	implA, keyA := key(strings.Repeat("a", 64))
	implB, keyB := key(strings.Repeat("b", 64))
	implA2, keyA2 := key(strings.Repeat("a", 64))
	if implA == implB || keyA.Digest == keyB.Digest {
		t.Errorf("different code digests, same implementation or key: %s / %s, %s / %s", implA, implB, keyA.Digest, keyB.Digest)
	}
	if implA != implA2 || keyA.Digest != keyA2.Digest {
		t.Errorf("the same code digest gave different keys: %s / %s", keyA.Digest, keyA2.Digest)
	}
}
