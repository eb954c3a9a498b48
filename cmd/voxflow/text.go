// Small text helpers shared by several commands.

package main

import (
	"encoding/json"
	"fmt"
)

// fmtValue renders a param value as JSON, as a spec would write it.
func fmtValue(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// orDefault is s, or d when s is empty.
func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
