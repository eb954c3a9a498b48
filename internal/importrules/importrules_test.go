package importrules

import (
	"os/exec"
	"strings"
	"testing"
)

// TestRulesCatchViolations checks the checker on a made-up graph in which
// every rule is broken at least once, so that a rule that can never fire
// is noticed.
func TestRulesCatchViolations(t *testing.T) {
	deps := map[string][]string{
		"stages/ridge":             {"stages", "stages/artifact", "numerics/linalg", "stages/data"}, // kind -> kind
		"stages/report":            {"stages", "stages/artifact"},
		"stages/tunecl":            {"stages/training", "stages/tunecl/internal/x"}, // own subpackage: fine
		"stages/tunecl/sub":        {"stages/tunecl", "stages/features/sub"},        // own kind fine; another kind's subpackage not
		"numerics/network":         {"numerics/accel", "stages"},                    // numerics -> contract
		"engine":                   {"stages", "cache", "stages/ridge"},             // engine -> kind
		"engine/slurm":             {"engine", "stages/artifact"},                   // a format is fine
		"cache":                    {"internal/jsonfile"},                           // cache -> project
		"stages":                   {"internal/jsonfile"},                           // contract -> project
		"stages/artifact":          {"numerics/npy", "stages/data"},                 // format -> kind
		"plugins":                  {"cmd/voxflow"},                                 // anything -> CLI
		"internal/procgroup":       {"engine"},                                      // plumbing -> engine
		"stages/training":          {"stages/artifact", "numerics/network"},
		"internal/jsonfile":        {},
		"stages/builtin":           {"stages/ridge", "stages/data"},
		"stages/data":              {"stages", "stages/artifact"},
		"cmd/voxflow":              {"engine", "stages/builtin"},
		"internal/importrules":     {},
		"stages/features/sub":      {},
		"stages/tunecl/internal/x": {},
	}
	got := Check(Rules(), deps)
	want := []string{
		"cache imports internal/jsonfile",
		"engine imports stages/ridge",
		"internal/procgroup imports engine",
		"numerics/network imports stages",
		"plugins imports cmd/voxflow",
		"stages imports internal/jsonfile",
		"stages/artifact imports stages/data",
		"stages/ridge imports stages/data",
		"stages/tunecl/sub imports stages/features/sub",
	}
	if len(got) != len(want) {
		t.Fatalf("violations:\n%s\nwant %d starting with:\n%s", strings.Join(got, "\n"), len(want), strings.Join(want, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]+":") {
			t.Errorf("violation %d = %q, want %q...", i, got[i], want[i])
		}
	}
	for _, r := range Rules() {
		fired := false
		for _, g := range got {
			fired = fired || strings.HasSuffix(g, ": "+r.Name)
		}
		if !fired {
			t.Errorf("rule %q never fires on the made-up graph: add a violation of it", r.Name)
		}
	}
}

// TestEveryPackageHasADoc: a reader learns what a folder holds from its
// package doc (issue #12), so every package, commands included, has one.
func TestEveryPackageHasADoc(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}|{{.Doc}}", Module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, doc, _ := strings.Cut(line, "|")
		n++
		if strings.TrimSpace(doc) == "" {
			t.Errorf("%s has no package doc comment", pkg)
		}
	}
	if n < 30 {
		t.Fatalf("go list reported %d packages; expected the whole module", n)
	}
}

// TestImportRules holds voxflow's real import graph to Rules: every
// package's dependencies, and its tests' direct imports to the rules that
// say Tests.
func TestImportRules(t *testing.T) {
	deps := list(t, `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`)
	for _, must := range []string{"stages", "stages/ridge", "engine", "cache", "numerics/network", "cmd/voxflow"} {
		if _, ok := deps[must]; !ok {
			t.Fatalf("go list did not report %s; the rules would check nothing", must)
		}
	}
	for _, v := range Check(Rules(), deps) {
		t.Error(v)
	}
	var testRules []Rule
	for _, r := range Rules() {
		if r.Tests {
			testRules = append(testRules, r)
		}
	}
	tests := list(t, `{{.ImportPath}}{{range .TestImports}} {{.}}{{end}}{{range .XTestImports}} {{.}}{{end}}`)
	for _, v := range Check(testRules, tests) {
		t.Error("tests: " + v)
	}
}

// list runs go list over the module with format, which prints a package's
// import path and then the import paths it is about, and returns them
// module-relative.
func list(t *testing.T, format string) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", format, Module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg, ok := rel(f[0])
		if !ok {
			continue
		}
		deps[pkg] = []string{}
		for _, d := range f[1:] {
			if r, ok := rel(d); ok {
				deps[pkg] = append(deps[pkg], r)
			}
		}
	}
	return deps
}

func rel(importPath string) (string, bool) {
	if importPath == Module {
		return "", false
	}
	return strings.CutPrefix(importPath, Module+"/")
}
