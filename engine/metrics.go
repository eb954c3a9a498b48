package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// readMetrics flattens a stage's metrics.json: every numeric leaf becomes a
// metric named by its path, keys joined by "." and list indices as
// numbers. A missing file means no metrics.
func readMetrics(path string) (map[string]float64, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("metrics.json: want a JSON object: %w", err)
	}
	out := map[string]float64{}
	flatten("", v, out)
	return out, nil
}

func flatten(prefix string, v any, out map[string]float64) {
	join := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	switch x := v.(type) {
	case float64:
		if prefix != "" {
			out[prefix] = x
		}
	case bool:
		if x {
			out[prefix] = 1
		} else {
			out[prefix] = 0
		}
	case map[string]any:
		for k, e := range x {
			flatten(join(k), e, out)
		}
	case []any:
		for i, e := range x {
			flatten(join(strconv.Itoa(i)), e, out)
		}
	}
}
