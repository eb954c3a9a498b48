package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/voxflow/voxflow/stages"
)

// stagesWidth is the width `voxflow stages` fits its tables to: $COLUMNS
// when the shell exports it, else 100, which any terminal shows.
func stagesWidth() int {
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n >= 60 {
		return n
	}
	return 100
}

// defaultCellMax bounds the default column: one long enumeration (the
// features `layer` list) must not widen every row of its table.
const defaultCellMax = 24

// tableRow is one param, input or output: cells wrap onto several lines,
// and below holds full values that did not fit (printed under the row).
type tableRow struct {
	role, name, typ string
	def, doc        []string
	below           []string
}

// writeStagesTable writes each kind's header, then its params, inputs and
// outputs as aligned columns that fit width: the default and description
// columns wrap, and an enumeration or default too long for its column is
// shortened there and printed in full once, below its row.
func writeStagesTable(w io.Writer, d stages.Description, width int) error {
	var rows []tableRow
	for _, p := range d.Params {
		r := tableRow{role: "param", name: p.Name, typ: p.Type, doc: []string{p.Doc}}
		parts := []string{"required"}
		if !p.Required {
			v := fmtValue(p.Default)
			if runeLen("default "+v) > defaultCellMax {
				r.below = append(r.below, "default: "+v)
				v = string([]rune(v)[:defaultCellMax-len("default ")-3]) + "..."
			}
			parts = []string{"default " + v}
		}
		if p.Min != nil {
			parts = append(parts, fmt.Sprintf(">= %g", *p.Min))
		}
		if p.Max != nil {
			parts = append(parts, fmt.Sprintf("<= %g", *p.Max))
		}
		r.def = packCells(parts, defaultCellMax)
		if len(p.Enum) > 0 {
			// Short enumerations stay in the cell (wrapped over at most two
			// lines); longer ones are counted there and listed below.
			enum := wrapWords("one of "+strings.Join(p.Enum, "|"), defaultCellMax)
			if len(enum) > 2 {
				r.below = append(r.below, "one of: "+strings.Join(p.Enum, " | "))
				enum = []string{fmt.Sprintf("one of %d (below)", len(p.Enum))}
			}
			r.def[len(r.def)-1] += ","
			r.def = append(r.def, enum...)
		}
		rows = append(rows, r)
	}
	for _, in := range d.Inputs {
		rows = append(rows, tableRow{role: "input", name: in.Name, typ: portShape(in), doc: []string{in.Doc}})
	}
	for _, out := range d.Outputs {
		rows = append(rows, tableRow{role: "output", name: out.Name, doc: []string{out.Doc}})
	}
	header := fmt.Sprintf("%s (version %s, %s): %s", d.Kind, d.Version, orDefault(d.Isolate, "inline"), d.Doc)
	// The first line takes the full width; the rest are indented by four,
	// so they wrap four columns earlier.
	lines := wrapWords(header, width)
	if len(lines) > 1 {
		lines = append(lines[:1], wrapWords(strings.Join(lines[1:], " "), width-4)...)
	}
	for i, l := range lines {
		if i > 0 {
			l = "    " + l
		}
		if _, err := fmt.Fprintln(w, l); err != nil {
			return err
		}
	}
	// Column widths from this kind's rows; the description takes the rest
	// (at least 24 columns: below that it wraps into slivers).
	wRole, wName, wType, wDef := 0, 0, 0, 0
	for _, r := range rows {
		wRole, wName, wType = max(wRole, runeLen(r.role)), max(wName, runeLen(r.name)), max(wType, runeLen(r.typ))
		for _, l := range r.def {
			wDef = max(wDef, runeLen(l))
		}
	}
	docCol := 2 + wRole + 2 + wName + 2 + wType + 2 + wDef + 2
	docWidth := max(24, width-docCol)
	for _, r := range rows {
		doc := wrapWords(strings.Join(r.doc, " "), docWidth)
		n := max(1, len(r.def), len(doc))
		for i := range n {
			role, name, typ, def, text := "", "", "", "", ""
			if i == 0 {
				role, name, typ = r.role, r.name, r.typ
			}
			if i < len(r.def) {
				def = r.def[i]
			}
			if i < len(doc) {
				text = doc[i]
			}
			line := fmt.Sprintf("  %-*s  %-*s  %-*s  %-*s  %s", wRole, role, wName, name, wType, typ, wDef, def, text)
			if _, err := fmt.Fprintln(w, strings.TrimRight(line, " ")); err != nil {
				return err
			}
		}
		// Full values once, under the row, indented past the role column.
		indent := strings.Repeat(" ", 2+wRole+2)
		for _, b := range r.below {
			for _, l := range wrapWords(r.name+" "+b, width-len(indent)-2) {
				if _, err := fmt.Fprintln(w, indent+l); err != nil {
					return err
				}
				indent = strings.Repeat(" ", 2+wRole+2+2)
			}
			indent = strings.Repeat(" ", 2+wRole+2)
		}
	}
	_, err := fmt.Fprintln(w)
	return err
}

func runeLen(s string) int { return utf8.RuneCountInString(s) }

// packCells joins parts with ", " into lines of at most width characters.
func packCells(parts []string, width int) []string {
	words := make([]string, len(parts))
	for i, p := range parts {
		if i < len(parts)-1 {
			p += ","
		}
		words[i] = p
	}
	return fill(words, width)
}

// wrapWords breaks s at spaces into lines of at most width characters; a
// word longer than width is cut at width (and at '|' where it has them,
// for enumerations).
func wrapWords(s string, width int) []string {
	width = max(width, 8)
	var words []string
	for _, word := range strings.Fields(s) {
		for rw := []rune(word); len(rw) > width; rw = []rune(word) {
			cut := strings.LastIndex(string(rw[:width]), "|") + 1
			if cut <= 0 {
				cut = len(string(rw[:width]))
			}
			words = append(words, word[:cut])
			word = word[cut:]
		}
		words = append(words, word)
	}
	return fill(words, width)
}

// fill puts words on lines greedily, one space apart, each line at most
// width characters unless a single word is longer.
func fill(words []string, width int) []string {
	var lines []string
	cur := ""
	for _, w := range words {
		switch {
		case cur == "":
			cur = w
		case runeLen(cur)+1+runeLen(w) <= width:
			cur += " " + w
		default:
			lines = append(lines, cur)
			cur = w
		}
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	return lines
}

// portShape says how many artifacts a port takes.
func portShape(p stages.PortSpec) string {
	s := "one"
	if p.Many {
		s = "many"
	}
	if p.Optional {
		s += ", optional"
	}
	return s
}
