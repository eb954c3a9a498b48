package spec

import (
	"fmt"
	"sort"
	"strings"
)

// Pos is a position in a spec file. A position with Line 0 names a place
// outside any file, such as a --set flag; its File then holds the flag.
type Pos struct {
	File      string
	Line, Col int
}

// String formats p as "file:line:col" (or "file:line" when the column is
// unknown, or just "file" for a pseudo-file such as a --set flag).
func (p Pos) String() string {
	switch {
	case p.Line <= 0:
		return p.File
	case p.Col <= 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// less orders positions by file, then line, then column.
func (p Pos) less(q Pos) bool {
	if p.File != q.File {
		return p.File < q.File
	}
	if p.Line != q.Line {
		return p.Line < q.Line
	}
	return p.Col < q.Col
}

// Error is one problem in a spec, at a position.
type Error struct {
	Pos Pos
	Msg string
}

// Error formats e as "file:line:col: msg".
func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// ErrorList is every problem found in a spec, sorted by position. A nil or
// empty ErrorList is no error; use err() to turn it into an error value.
type ErrorList []*Error

// Error prints one error per line.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// add appends an error at pos.
func (l *ErrorList) add(pos Pos, format string, args ...any) {
	*l = append(*l, &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

// err sorts and deduplicates the list and returns it as an error, or nil
// when it is empty. Deduplication matters because validation visits a
// stage's params once per foreach binding.
func (l ErrorList) err() error {
	if len(l) == 0 {
		return nil
	}
	out := make(ErrorList, len(l))
	copy(out, l)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Pos != out[j].Pos {
			return out[i].Pos.less(out[j].Pos)
		}
		return out[i].Msg < out[j].Msg
	})
	dedup := out[:1]
	for _, e := range out[1:] {
		last := dedup[len(dedup)-1]
		if e.Pos == last.Pos && e.Msg == last.Msg {
			continue
		}
		dedup = append(dedup, e)
	}
	return dedup
}
