package spec

import (
	"fmt"
	"sort"
	"strings"

	"github.com/agnivade/levenshtein"
)

// suggest returns the candidate closest to name by edit distance, or ""
// when none is close enough to be a plausible typo.
func suggest(name string, candidates []string) string {
	best, bestD := "", 0
	for _, c := range candidates {
		if c == name {
			// A listed name that still did not resolve (a plugin kind whose
			// plugin failed to start) is no correction of itself.
			continue
		}
		d := levenshtein.ComputeDistance(strings.ToLower(name), strings.ToLower(c))
		// Two edits cover a transposition ("wiht"); longer names may drift
		// further. A distance as long as either word is no hint at all.
		limit := max(2, min(3, len(name)/3))
		if d > limit || d >= max(len(name), len(c)) {
			continue
		}
		if best == "" || d < bestD || (d == bestD && c < best) {
			best, bestD = c, d
		}
	}
	return best
}

// didYouMean formats a "; did you mean X?" hint, or "" without a close
// candidate. With list set it also names every candidate, for short
// vocabularies where seeing all of them helps.
func didYouMean(name string, candidates []string, list bool) string {
	var b strings.Builder
	if s := suggest(name, candidates); s != "" {
		fmt.Fprintf(&b, "; did you mean %s?", s)
	}
	if list && len(candidates) > 0 {
		sorted := append([]string(nil), candidates...)
		sort.Strings(sorted)
		fmt.Fprintf(&b, " (known: %s)", strings.Join(sorted, ", "))
	}
	return b.String()
}

// DidYouMean formats a "; did you mean X?" hint for the candidate closest to
// name, or "" without one; name itself is never suggested. The engine and
// the CLI use it so every "unknown X" message hints alike.
func DidYouMean(name string, candidates []string) string {
	return didYouMean(name, candidates, false)
}
