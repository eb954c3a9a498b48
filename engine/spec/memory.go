package spec

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// memoryRE matches a memory size: a number, an optional unit prefix and an
// optional "B" or "iB".
var memoryRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)(I?B?)$`)

// ParseMemory reads a memory size into MiB, rounding up. Units are binary,
// as in Slurm: K, M, G and T are 1024-based whether written 2G, 2GB or 2GiB
// (all 2048 MiB); a plain number is MiB. It is the one parser of memory
// sizes, for a stage's `resources: {memory: ...}` and `voxflow run
// --memory` alike, so the same text always means the same budget.
func ParseMemory(s string) (int64, error) {
	m := memoryRE.FindStringSubmatch(strings.ToUpper(strings.TrimSpace(s)))
	if m == nil || m[3] == "I" {
		if strings.HasPrefix(strings.TrimSpace(s), "-") {
			return 0, fmt.Errorf("want a non-negative size, got %q", s)
		}
		return 0, fmt.Errorf("want a size such as 512MiB, 4GiB, 2G or a plain number of MiB, got %q", s)
	}
	if m[2] == "" && m[3] != "" {
		return 0, fmt.Errorf("bad size %q: a bare B is ambiguous; want MiB or GiB", s)
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("bad size %q: %w", s, err)
	}
	scale := map[string]float64{"": 1, "K": 1.0 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}[m[2]]
	mb := math.Ceil(f * scale)
	if mb > 1<<50 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return int64(mb), nil
}
