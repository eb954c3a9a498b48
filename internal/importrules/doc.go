// Package importrules holds the test that keeps voxflow's layout honest:
// which folders may import which (see Rules). It has no code of its own
// beyond the rule checker its test runs over `go list` (every package's
// dependencies, and its tests' direct imports for the rules with Tests).
package importrules

import (
	"fmt"
	"sort"
	"strings"
)

// Module is voxflow's module path.
const Module = "github.com/voxflow/voxflow"

// Rule forbids packages matching From from depending, directly or
// transitively, on packages matching To. Patterns are module-relative and
// match path segments: "*" is any one segment, a trailing "..." one or more
// ("stages/*" is every direct child of stages, "stages/*/..." everything
// below those, "internal/..." everything below internal, "..." all).
type Rule struct {
	Name string
	// From and To say which packages the rule is about. Exempt removes
	// packages from From, Except removes packages from To (e.g. the shared
	// stage packages, which are not kinds).
	From, To, Exempt, Except []string
	// Self allows a package to depend on its own kind: packages that share
	// its first two segments (stages/ridge/internal/x and stages/ridge).
	Self bool
	// Tests holds the rule for the direct imports of the package's tests
	// too. Rules without it let tests borrow a real kind or helper (the
	// engine's tests schedule stages/command).
	Tests bool
}

// Rules are voxflow's import rules (README.md, "Layout"; issue #12 item 7).
func Rules() []Rule {
	shared := []string{"stages/artifact", "stages/artifact/...", "stages/training", "stages/training/...", "stages/builtin"}
	kinds := []string{"stages/*", "stages/*/..."} // a kind and its own subpackages
	return []Rule{
		{Name: "a stage kind imports no other kind", From: kinds, Exempt: shared, To: kinds, Except: shared, Self: true, Tests: true},
		{Name: "numerics import nothing of voxflow but numerics and internal/jsonfile", From: []string{"numerics/..."},
			To: []string{"..."}, Except: []string{"numerics/...", "internal/jsonfile"}, Tests: true},
		{Name: "internal plumbing imports nothing of the contract, engine or numerics", From: []string{"internal/..."},
			To: []string{"stages", "stages/...", "engine", "engine/...", "cache", "cache/...", "plugins", "plugins/...", "numerics/..."}},
		// testexec stands in for the voxflow binary on a Slurm node in
		// engine/slurm's tests, so it links a kind as the binary does.
		{Name: "the engine imports no stage kind", From: []string{"engine", "engine/..."}, Exempt: []string{"engine/slurm/internal/testexec"},
			To: []string{"stages/...", "plugins/examples/..."}, Except: []string{"stages/artifact", "stages/artifact/..."}},
		{Name: "the stage contract imports nothing of the project", From: []string{"stages"}, To: []string{"..."}},
		{Name: "cache imports nothing of the project", From: []string{"cache", "cache/..."}, To: []string{"..."}, Tests: true},
		{Name: "shared stage packages import no kind", From: []string{"stages/artifact", "stages/artifact/...", "stages/training", "stages/training/..."},
			To: kinds, Except: shared, Tests: true},
		{Name: "nothing but the CLI imports the CLI", From: []string{"..."}, Exempt: []string{"cmd/..."}, To: []string{"cmd/..."}},
	}
}

// match reports whether the module-relative package rel matches pattern.
func match(pattern, rel string) bool {
	ps, rs := strings.Split(pattern, "/"), strings.Split(rel, "/")
	for i, p := range ps {
		if p == "..." && i == len(ps)-1 {
			return len(rs) > i
		}
		if i >= len(rs) || (p != "*" && p != rs[i]) {
			return false
		}
	}
	return len(rs) == len(ps)
}

// sameKind reports whether a and b lie in one stages/<kind> tree.
func sameKind(a, b string) bool {
	as, bs := strings.SplitN(a, "/", 3), strings.SplitN(b, "/", 3)
	return len(as) >= 2 && len(bs) >= 2 && as[0] == bs[0] && as[1] == bs[1]
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
				if r.Self && sameKind(pkg, d) {
					continue
				}
				bad = append(bad, fmt.Sprintf("%s imports %s: %s", pkg, d, r.Name))
			}
		}
	}
	sort.Strings(bad)
	return bad
}
