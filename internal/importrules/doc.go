// Package importrules holds the test that keeps voxflow's layout honest:
// which folders may import which (see Rules). It has no code of its own
// beyond the rule checker its test runs over `go list -deps`.
package importrules

import (
	"fmt"
	"sort"
	"strings"
)

// Module is voxflow's module path.
const Module = "github.com/voxflow/voxflow"

// Rule forbids packages matching From from depending, directly or
// transitively, on packages matching To. Patterns are module-relative:
// "stages/*" is every direct child of stages, "internal/..." a tree.
type Rule struct {
	Name string
	// From and To say which packages the rule is about. Exempt removes
	// packages from From, Except removes packages from To (e.g. the shared
	// stage packages, which are not kinds).
	From, To, Exempt, Except []string
	// Self allows a package to depend on packages under itself (a kind's
	// own internal helpers).
	Self bool
}

// Rules are voxflow's import rules (DESIGN.md, layout).
func Rules() []Rule {
	shared := []string{"stages/artifact", "stages/artifact/...", "stages/training", "stages/training/...", "stages/builtin"}
	return []Rule{
		{Name: "a stage kind imports no other kind", From: []string{"stages/*"}, Exempt: shared, To: []string{"stages/*"}, Except: shared, Self: true},
		{Name: "numerics import nothing of voxflow but numerics", From: []string{"numerics/..."},
			To: []string{"..."}, Except: []string{"numerics/...", "internal/jsonfile"}},
		{Name: "internal plumbing imports nothing of the contract, engine or numerics", From: []string{"internal/..."},
			To: []string{"stages", "stages/...", "engine", "engine/...", "cache", "cache/...", "plugins", "plugins/...", "numerics/..."}},
		// testexec stands in for the voxflow binary on a Slurm node in
		// engine/slurm's tests, so it links a kind as the binary does.
		{Name: "the engine imports no stage kind", From: []string{"engine", "engine/..."}, Exempt: []string{"engine/slurm/internal/testexec"},
			To: []string{"stages/...", "plugins/examples/..."}, Except: []string{"stages/artifact", "stages/artifact/..."}},
		{Name: "the stage contract imports nothing of the project", From: []string{"stages"}, To: []string{"..."}},
		{Name: "cache imports nothing of the project", From: []string{"cache", "cache/..."}, To: []string{"..."}},
		{Name: "shared stage packages import no kind", From: []string{"stages/artifact", "stages/artifact/...", "stages/training", "stages/training/..."},
			To: []string{"stages/*"}, Except: shared},
		{Name: "nothing but the CLI imports the CLI", From: []string{"..."}, Exempt: []string{"cmd/..."}, To: []string{"cmd/..."}},
	}
}

// match reports whether the module-relative package rel matches pattern.
func match(pattern, rel string) bool {
	switch {
	case pattern == "...":
		return true
	case strings.HasSuffix(pattern, "/..."):
		base := strings.TrimSuffix(pattern, "/...")
		return strings.HasPrefix(rel, base+"/")
	case strings.HasSuffix(pattern, "/*"):
		base := strings.TrimSuffix(pattern, "/*")
		rest, ok := strings.CutPrefix(rel, base+"/")
		return ok && rest != "" && !strings.Contains(rest, "/")
	}
	return pattern == rel
}

func matchAny(patterns []string, rel string) bool {
	for _, p := range patterns {
		if match(p, rel) {
			return true
		}
	}
	return false
}

// Check returns one line per forbidden dependency in deps, which maps each
// module-relative package to its module-relative dependencies (transitive,
// as `go list -deps` gives them).
func Check(rules []Rule, deps map[string][]string) []string {
	var bad []string
	for pkg, ds := range deps {
		for _, r := range rules {
			if !matchAny(r.From, pkg) || matchAny(r.Exempt, pkg) {
				continue
			}
			for _, d := range ds {
				if d == pkg || !matchAny(r.To, d) || matchAny(r.Except, d) {
					continue
				}
				if r.Self && strings.HasPrefix(d, pkg+"/") {
					continue
				}
				bad = append(bad, fmt.Sprintf("%s imports %s: %s", pkg, d, r.Name))
			}
		}
	}
	sort.Strings(bad)
	return bad
}
