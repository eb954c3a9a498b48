package spec

import (
	"fmt"
	"math"
	"strings"

	"gopkg.in/yaml.v3"
)

// nodeKind is the shape of a tree node.
type nodeKind int

const (
	scalarNode nodeKind = iota
	seqNode
	mapNode
)

// node is the spec's own YAML tree: yaml.v3's nodes with aliases and merge
// keys resolved, scalars decoded to plain values, and a full Pos (file
// included) on every node, so that values injected by a variant or a --set
// flag keep pointing at where they came from.
type node struct {
	kind  nodeKind
	val   any // scalar value: nil, string, bool, int64 or float64
	text  string
	items []*node
	pairs []*pair
	pos   Pos
}

// pair is one mapping entry.
type pair struct {
	key    string
	keyPos Pos
	val    *node
}

// maxNodes bounds the tree size after alias expansion, so that an alias
// "billion laughs" document cannot exhaust memory.
const maxNodes = 200000

// get returns the entry for key in a mapping node, or nil.
func (n *node) get(key string) *pair {
	if n == nil || n.kind != mapNode {
		return nil
	}
	for _, p := range n.pairs {
		if p.key == key {
			return p
		}
	}
	return nil
}

// set replaces or appends a mapping entry.
func (n *node) set(key string, keyPos Pos, val *node) {
	if p := n.get(key); p != nil {
		p.keyPos, p.val = keyPos, val
		return
	}
	n.pairs = append(n.pairs, &pair{key: key, keyPos: keyPos, val: val})
}

// clone deep-copies n.
func (n *node) clone() *node {
	if n == nil {
		return nil
	}
	c := *n
	c.items = make([]*node, len(n.items))
	for i, it := range n.items {
		c.items[i] = it.clone()
	}
	c.pairs = make([]*pair, len(n.pairs))
	for i, p := range n.pairs {
		c.pairs[i] = &pair{key: p.key, keyPos: p.keyPos, val: p.val.clone()}
	}
	return &c
}

// moveTo sets every position in n's subtree to pos.
func (n *node) moveTo(pos Pos) {
	n.pos = pos
	for _, it := range n.items {
		it.moveTo(pos)
	}
	for _, p := range n.pairs {
		p.keyPos = pos
		p.val.moveTo(pos)
	}
}

// isNull reports whether n is absent or a YAML null.
func (n *node) isNull() bool { return n == nil || (n.kind == scalarNode && n.val == nil) }

// describe names n's type for error messages.
func (n *node) describe() string {
	if n == nil {
		return "nothing"
	}
	switch n.kind {
	case seqNode:
		return "a list"
	case mapNode:
		return "a mapping"
	}
	return describeValue(n.val)
}

// plain converts n to plain Go values: nil, string, bool, int64, float64,
// []any and map[string]any.
func (n *node) plain() any {
	if n == nil {
		return nil
	}
	switch n.kind {
	case seqNode:
		out := make([]any, len(n.items))
		for i, it := range n.items {
			out[i] = it.plain()
		}
		return out
	case mapNode:
		out := make(map[string]any, len(n.pairs))
		for _, p := range n.pairs {
			out[p.key] = p.val.plain()
		}
		return out
	}
	return n.val
}

// recordPos stores the position of n and of everything below it in fp,
// under prefix ("with.alphas", "with.alphas[0]", "with.m.k").
func (n *node) recordPos(fp map[string]Pos, prefix string) {
	if n == nil {
		return
	}
	fp[prefix] = n.pos
	for i, it := range n.items {
		it.recordPos(fp, fmt.Sprintf("%s[%d]", prefix, i))
	}
	for _, p := range n.pairs {
		p.val.recordPos(fp, prefix+"."+p.key)
	}
}

// parseYAML reads data into a tree. It returns nil and errors when the
// document cannot be read at all.
func parseYAML(file string, data []byte, errs *ErrorList) (root *node) {
	var doc yaml.Node
	if err := safeUnmarshal(protect(data), &doc); err != nil {
		errs.add(yamlErrPos(file, err), "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		return nil
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return &node{kind: scalarNode, pos: Pos{File: file, Line: 1, Col: 1}}
	}
	c := &converter{file: file, errs: errs, budget: maxNodes, active: map[*yaml.Node]bool{}}
	return c.conv(&doc)
}

// safeUnmarshal turns a panic inside the YAML library into an error: the
// parser must never take the process down on hostile input.
func safeUnmarshal(data []byte, doc *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: cannot parse document: %v", r)
		}
	}()
	return yaml.Unmarshal(data, doc)
}

// yamlErrPos extracts "line N" from a yaml.v3 error message.
func yamlErrPos(file string, err error) Pos {
	var line int
	msg := err.Error()
	if i := strings.Index(msg, "line "); i >= 0 {
		_, _ = fmt.Sscanf(msg[i+5:], "%d", &line)
	}
	if line == 0 {
		line = 1
	}
	return Pos{File: file, Line: line}
}

// converter turns yaml.v3 nodes into the spec tree.
type converter struct {
	file     string
	errs     *ErrorList
	budget   int
	exceeded bool
	active   map[*yaml.Node]bool // aliases being expanded, to stop recursion
}

func (c *converter) pos(n *yaml.Node) Pos { return Pos{File: c.file, Line: n.Line, Col: n.Column} }

func (c *converter) conv(n *yaml.Node) *node {
	c.budget--
	if c.budget < 0 {
		if !c.exceeded {
			c.exceeded = true
			c.errs.add(c.pos(n), "document too large: more than %d nodes after expanding aliases", maxNodes)
		}
		return &node{kind: scalarNode, pos: c.pos(n)}
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return &node{kind: scalarNode, pos: c.pos(n)}
		}
		return c.conv(n.Content[0])
	case yaml.AliasNode:
		if n.Alias == nil || c.active[n.Alias] {
			c.errs.add(c.pos(n), "alias *%s refers to itself", n.Value)
			return &node{kind: scalarNode, pos: c.pos(n)}
		}
		c.active[n.Alias] = true
		out := c.conv(n.Alias)
		delete(c.active, n.Alias)
		return out
	case yaml.SequenceNode:
		out := &node{kind: seqNode, pos: c.pos(n), items: make([]*node, 0, len(n.Content))}
		for _, it := range n.Content {
			out.items = append(out.items, c.conv(it))
		}
		return out
	case yaml.MappingNode:
		return c.mapping(n)
	case yaml.ScalarNode:
		return c.scalar(n)
	}
	c.errs.add(c.pos(n), "unsupported YAML node")
	return &node{kind: scalarNode, pos: c.pos(n)}
}

// mapping converts a mapping, reporting duplicate keys (yaml.v3's node API
// keeps them, silently letting the last one win is how typos hide) and
// resolving "<<" merge keys, whose entries never override explicit ones.
func (c *converter) mapping(n *yaml.Node) *node {
	out := &node{kind: mapNode, pos: c.pos(n)}
	var merges []*node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merges = append(merges, c.conv(v))
			continue
		}
		if k.Kind != yaml.ScalarNode {
			c.errs.add(c.pos(k), "mapping keys must be plain strings, got a %s", kindName(k.Kind))
			continue
		}
		val := c.conv(v)
		key := restore(k.Value)
		if prev := out.get(key); prev != nil {
			c.errs.add(c.pos(k), "duplicate key %q (first defined at %d:%d)", key, prev.keyPos.Line, prev.keyPos.Col)
			continue
		}
		out.pairs = append(out.pairs, &pair{key: key, keyPos: c.pos(k), val: val})
	}
	for _, m := range merges {
		srcs := []*node{m}
		if m.kind == seqNode {
			srcs = m.items
		}
		for _, src := range srcs {
			if src.kind != mapNode {
				c.errs.add(src.pos, "merge key << needs a mapping or a list of mappings, got %s", src.describe())
				continue
			}
			for _, p := range src.pairs {
				if out.get(p.key) == nil {
					out.pairs = append(out.pairs, &pair{key: p.key, keyPos: p.keyPos, val: p.val.clone()})
				}
			}
		}
	}
	return out
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.SequenceNode:
		return "list"
	case yaml.MappingNode:
		return "mapping"
	case yaml.AliasNode:
		return "alias"
	}
	return "scalar"
}

// scalar decodes a scalar with YAML's own resolution rules, normalised to
// int64/float64.
func (c *converter) scalar(n *yaml.Node) *node {
	out := &node{kind: scalarNode, pos: c.pos(n), text: restore(n.Value)}
	switch n.ShortTag() {
	case "!!null":
		out.val = nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			c.errs.add(out.pos, "bad boolean %q", n.Value)
		}
		out.val = b
	case "!!int":
		var i int64
		if err := n.Decode(&i); err != nil {
			var f float64
			if ferr := n.Decode(&f); ferr == nil && !math.IsInf(f, 0) {
				c.errs.add(out.pos, "integer %s does not fit in 64 bits", n.Value)
			} else {
				c.errs.add(out.pos, "bad integer %q", n.Value)
			}
		}
		out.val = i
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			c.errs.add(out.pos, "bad number %q", n.Value)
		} else if math.IsNaN(f) || math.IsInf(f, 0) {
			c.errs.add(out.pos, "number %s is not finite; only finite numbers are allowed", n.Value)
			f = 0
		}
		out.val = f
	case "!!str", "!!timestamp", "!!binary":
		out.val = out.text
	default:
		c.errs.add(out.pos, "unsupported YAML tag %s; want a plain string, number, boolean or null", n.Tag)
		out.val = n.Value
	}
	return out
}

// describeValue names a plain value's type for error messages.
func describeValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("string %q", x)
	case bool:
		return fmt.Sprintf("bool %v", x)
	case int64, int:
		return fmt.Sprintf("int %v", x)
	case float64:
		return "float " + formatFloat(x)
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("%T", v)
}

// Private-use runes stand in for the braces of ${...} while YAML parses,
// so that `{roi: ${params.rois}}` reads as a flow mapping holding the
// reference rather than as a syntax error. One rune per brace keeps every
// column where the user sees it.
const (
	openBrace  = '\uE000'
	closeBrace = '\uE001'
)

// protect replaces the braces of each ${...} (closed on the same line)
// with placeholder runes. Input already holding a placeholder rune is left
// alone rather than risk changing its meaning.
func protect(data []byte) []byte {
	s := string(data)
	if strings.ContainsRune(s, openBrace) || strings.ContainsRune(s, closeBrace) || !strings.Contains(s, "${") {
		return data
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			break
		}
		end := strings.IndexFunc(s[i+2:], func(r rune) bool { return !isRefRune(r) }) + 2
		if end < 2 || s[i+end] != '}' {
			b.WriteString(s[:i+2])
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i+1])
		b.WriteRune(openBrace)
		b.WriteString(s[i+2 : i+end])
		b.WriteRune(closeBrace)
		s = s[i+end+1:]
	}
	b.WriteString(s)
	return []byte(b.String())
}

// restore undoes protect in a scalar.
func restore(s string) string {
	if !strings.ContainsRune(s, openBrace) && !strings.ContainsRune(s, closeBrace) {
		return s
	}
	return strings.NewReplacer(string(openBrace), "{", string(closeBrace), "}").Replace(s)
}

// isRefRune reports whether r may appear inside ${...}.
func isRefRune(r rune) bool {
	return r == '_' || r == '-' || r == '.' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
}
