package importrules

import (
	"os/exec"
	"strings"
	"testing"
)

// TestRulesCatchViolations checks the checker on a made-up graph, so that
// a rule that can never fire is noticed.
func TestRulesCatchViolations(t *testing.T) {
	deps := map[string][]string{
		"stages/ridge":         {"stages", "stages/artifact", "numerics/linalg", "stages/data"}, // kind -> kind
		"stages/report":        {"stages", "stages/artifact"},
		"stages/tunecl":        {"stages/training", "stages/tunecl/internal/x"}, // own subpackage: fine
		"numerics/network":     {"numerics/accel", "stages"},                    // numerics -> contract
		"engine":               {"stages", "cache", "stages/ridge"},             // engine -> kind
		"engine/slurm":         {"engine", "stages/artifact"},                   // a format is fine
		"cache":                {"internal/jsonfile"},                           // cache -> project
		"stages":               {},
		"stages/artifact":      {"numerics/npy", "stages/data"}, // format -> kind
		"plugins":              {"cmd/voxflow"},                 // anything -> CLI
		"internal/procgroup":   {},
		"stages/training":      {"stages/artifact", "numerics/network"},
		"internal/jsonfile":    {},
		"stages/builtin":       {"stages/ridge", "stages/data"},
		"stages/data":          {"stages", "stages/artifact"},
		"cmd/voxflow":          {"engine", "stages/builtin"},
		"internal/importrules": {},
	}
	got := Check(Rules(), deps)
	want := []string{
		"cache imports internal/jsonfile",
		"engine imports stages/ridge",
		"numerics/network imports stages",
		"plugins imports cmd/voxflow",
		"stages/artifact imports stages/data",
		"stages/ridge imports stages/data",
	}
	if len(got) != len(want) {
		t.Fatalf("violations:\n%s\nwant %d starting with:\n%s", strings.Join(got, "\n"), len(want), strings.Join(want, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]+":") {
			t.Errorf("violation %d = %q, want %q...", i, got[i], want[i])
		}
	}
}

// TestImportRules holds voxflow's real import graph to Rules.
func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps=false", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, Module+"/...").Output()
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
	for _, must := range []string{"stages", "stages/ridge", "engine", "cache", "numerics/network", "cmd/voxflow"} {
		if _, ok := deps[must]; !ok {
			t.Fatalf("go list did not report %s; the rules would check nothing", must)
		}
	}
	for _, v := range Check(Rules(), deps) {
		t.Error(v)
	}
}

func rel(importPath string) (string, bool) {
	if importPath == Module {
		return "", false
	}
	return strings.CutPrefix(importPath, Module+"/")
}
