package james

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// node is one XML element of a James configuration file, as Apache Commons
// Configuration sees it: comments and processing instructions are gone
// (James ignores them, and the samples keep commented-out alternatives
// such as a second <secret> in them), text is trimmed.
type node struct {
	Name     string
	Attrs    map[string]string
	Children []*node
	Text     string
	Line     int
}

// parseXML reads one configuration file into its root element. Errors name
// the line, as James's own parser would.
func parseXML(data []byte) (*node, error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	var stack []*node
	var root *node
	var text strings.Builder
	for {
		line, _ := dec.InputPos()
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &node{Name: t.Name.Local, Attrs: map[string]string{}, Line: line}
			for _, a := range t.Attr {
				n.Attrs[a.Name.Local] = a.Value
			}
			if len(stack) == 0 {
				if root != nil {
					return nil, fmt.Errorf("line %d: a second root element <%s>", line, n.Name)
				}
				root = n
			} else {
				parent := stack[len(stack)-1]
				parent.Children = append(parent.Children, n)
			}
			stack = append(stack, n)
			text.Reset()
		case xml.CharData:
			if len(stack) > 0 {
				text.Write(t)
			}
		case xml.EndElement:
			n := stack[len(stack)-1]
			if len(n.Children) == 0 {
				n.Text = strings.TrimSpace(text.String())
			}
			stack = stack[:len(stack)-1]
			text.Reset()
		}
	}
	if root == nil {
		return nil, errors.New("no root element")
	}
	return root, nil
}

// child returns the first child element called name, or nil.
func (n *node) child(name string) *node {
	for _, c := range n.Children {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// sensitive reports whether an element or attribute name holds a secret
// whose value must not be printed (in notes or errors).
func sensitive(name string) bool {
	l := strings.ToLower(name)
	return strings.Contains(l, "secret") || strings.Contains(l, "password")
}

// describe renders n and what it holds on one line for a note:
// `<connectionBacklog>200</connectionBacklog>`, `<handler
// class="...ValidRcptHandler"/>`, `<auth>` with its children as
// `<auth><announce>never</announce>...`. Secrets show as "(not shown)".
func (n *node) describe() string {
	var b strings.Builder
	n.render(&b)
	return b.String()
}

func (n *node) render(b *strings.Builder) {
	b.WriteString("<" + n.Name)
	names := make([]string, 0, len(n.Attrs))
	for k := range n.Attrs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := n.Attrs[k]
		if sensitive(k) {
			v = "(not shown)"
		}
		fmt.Fprintf(b, " %s=%q", k, v)
	}
	switch {
	case len(n.Children) > 0:
		b.WriteString(">")
		for _, c := range n.Children {
			c.render(b)
		}
		b.WriteString("</" + n.Name + ">")
	case n.Text != "":
		v := strings.Join(strings.Fields(n.Text), " ")
		if sensitive(n.Name) {
			v = "(not shown)"
		}
		b.WriteString(">" + v + "</" + n.Name + ">")
	default:
		b.WriteString("/>")
	}
}
