package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every example spec users copy must validate as shipped.
func TestExampleSpecsValidate(t *testing.T) {
	specs, err := filepath.Glob("../../specs/*.yaml")
	if err != nil || len(specs) < 3 {
		t.Fatalf("example specs: %v %v", specs, err)
	}
	for _, s := range specs {
		abs, _ := filepath.Abs(s)
		if r := vox(t, t.TempDir(), "validate", abs); r.code != 0 {
			t.Errorf("%s:\n%s", s, r)
		}
	}
}

// specs/pca.yaml end to end: the example plugin serves a stage of a real
// study, and rebuilding its binary reruns that stage and its dependents
// only.
func TestPCAPluginSpec(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "specs"), 0o755)
	spec := readFile(t, "../../specs/pca.yaml")
	spec = strings.Replace(spec, "n_images: 600", "n_images: 300", 1)
	writeFile(t, filepath.Join(dir, "specs", "pca.yaml"), spec)
	plugin := filepath.Join(dir, "bin", "voxflow-pca")
	buildPlugin(t, "../../plugins/examples/pca", plugin)
	sdir := filepath.Join(dir, "specs")
	r := vox(t, sdir, "run", "pca.yaml", "--plain")
	if r.code != 0 || !strings.Contains(r.stdout, "5 executed") {
		t.Fatalf("pca spec:\n%s", r)
	}
	r = vox(t, sdir, "show", "ridge")
	if !strings.Contains(r.stdout, "compare.reduced_vs_feat.roi.FFA-1.pct_improved") {
		t.Fatalf("ridge should compare the PCA features with the raw ones:\n%s", r)
	}
	// Different bytes (no -trimpath vs -trimpath), so a different digest.
	if b, err := runGo("build", "-trimpath", "-o", plugin, "../../plugins/examples/pca"); err != nil {
		t.Fatalf("rebuild: %v\n%s", err, b)
	}
	r = vox(t, sdir, "plan", "pca.yaml")
	if !strings.Contains(r.stdout, "2 to run, 3 cached") || !strings.Contains(r.stdout, "implementation changed") {
		t.Fatalf("after rebuilding the plugin only reduced and ridge rerun:\n%s", r)
	}
}
