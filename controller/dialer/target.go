package dialer

import (
	"strings"

	"github.com/callgate/callgate/controller"
)

// maxTargetLen bounds a targeting expression; maxTargetDepth its nesting.
const (
	maxTargetLen   = 4096
	maxTargetDepth = 32
)

// ParseTarget parses a targeting expression over lead tags:
//
//	region = "Nanshan" and size = "small"
//	(industry = retail or industry = food) and not region in ("North", "West")
//	vip                    (the tag is set)
//	size != large
//
// Keys are letters, digits, '_', '-' and '.'; values are double-quoted
// (with \" and \\ escapes) or bare words like keys. and binds tighter than
// or; keywords are case-insensitive. An empty expression returns nil (every
// lead). Returns EINVALID on field "target" saying where it went wrong.
func ParseTarget(s string) (*controller.TagExpr, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	if len(s) > maxTargetLen {
		return nil, controller.FieldError("target", "longer than %d characters", maxTargetLen)
	}
	p := &targetParser{src: s}
	if err := p.lex(); err != nil {
		return nil, err
	}
	e, err := p.or(0)
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.toks) {
		return nil, p.errorf("unexpected %s", p.toks[p.pos].text)
	}
	return &e, nil
}

type tokKind int

const (
	tokWord tokKind = iota
	tokString
	tokOp // = != ( ) ,
)

type token struct {
	kind tokKind
	text string
	at   int
}

type targetParser struct {
	src  string
	toks []token
	pos  int
}

func (p *targetParser) errorf(format string, args ...any) error {
	at := len(p.src)
	if p.pos < len(p.toks) {
		at = p.toks[p.pos].at
	}
	return controller.FieldError("target", "at character %d: "+format, append([]any{at + 1}, args...)...)
}

func isWordByte(c byte) bool {
	return c == '_' || c == '-' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func (p *targetParser) lex() error {
	s := p.src
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '=' || c == '(' || c == ')' || c == ',':
			p.toks = append(p.toks, token{tokOp, string(c), i})
			i++
		case c == '!' && i+1 < len(s) && s[i+1] == '=':
			p.toks = append(p.toks, token{tokOp, "!=", i})
			i += 2
		case c == '"':
			var b strings.Builder
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) && (s[j+1] == '"' || s[j+1] == '\\') {
					j++
				} else if s[j] < 0x20 || s[j] == 0x7f {
					return controller.FieldError("target", "at character %d: control character in a value", j+1)
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return controller.FieldError("target", "at character %d: unterminated string", i+1)
			}
			p.toks = append(p.toks, token{tokString, b.String(), i})
			i = j + 1
		case isWordByte(c):
			j := i
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
			p.toks = append(p.toks, token{tokWord, s[i:j], i})
			i = j
		default:
			return controller.FieldError("target", "at character %d: unexpected character %q", i+1, c)
		}
	}
	return nil
}

func (p *targetParser) peekKeyword(kw string) bool {
	return p.pos < len(p.toks) && p.toks[p.pos].kind == tokWord && strings.EqualFold(p.toks[p.pos].text, kw)
}

func (p *targetParser) peekOp(op string) bool {
	return p.pos < len(p.toks) && p.toks[p.pos].kind == tokOp && p.toks[p.pos].text == op
}

func isKeyword(w string) bool {
	switch strings.ToLower(w) {
	case "and", "or", "not", "in":
		return true
	}
	return false
}

func (p *targetParser) or(depth int) (controller.TagExpr, error) {
	return p.chain(depth, "or", p.and)
}

func (p *targetParser) and(depth int) (controller.TagExpr, error) {
	return p.chain(depth, "and", p.unary)
}

func (p *targetParser) chain(depth int, kw string, next func(int) (controller.TagExpr, error)) (controller.TagExpr, error) {
	first, err := next(depth)
	if err != nil {
		return first, err
	}
	if !p.peekKeyword(kw) {
		return first, nil
	}
	e := controller.TagExpr{Op: kw, Args: []controller.TagExpr{first}}
	for p.peekKeyword(kw) {
		p.pos++
		x, err := next(depth)
		if err != nil {
			return e, err
		}
		e.Args = append(e.Args, x)
	}
	return e, nil
}

func (p *targetParser) unary(depth int) (controller.TagExpr, error) {
	if depth > maxTargetDepth {
		return controller.TagExpr{}, p.errorf("nested more than %d deep", maxTargetDepth)
	}
	switch {
	case p.pos >= len(p.toks):
		return controller.TagExpr{}, p.errorf("expression ends too soon")
	case p.peekKeyword("not"):
		p.pos++
		x, err := p.unary(depth + 1)
		return controller.TagExpr{Op: "not", Args: []controller.TagExpr{x}}, err
	case p.peekOp("("):
		p.pos++
		x, err := p.or(depth + 1)
		if err != nil {
			return x, err
		}
		if !p.peekOp(")") {
			return x, p.errorf("missing )")
		}
		p.pos++
		return x, nil
	}
	t := p.toks[p.pos]
	if t.kind != tokWord || isKeyword(t.text) {
		return controller.TagExpr{}, p.errorf("expected a tag name, found %q", t.text)
	}
	p.pos++
	switch {
	case p.peekOp("=") || p.peekOp("!="):
		op := map[string]string{"=": "eq", "!=": "ne"}[p.toks[p.pos].text]
		p.pos++
		v, err := p.value()
		return controller.TagExpr{Op: op, Key: t.text, Value: v}, err
	case p.peekKeyword("in"):
		p.pos++
		if !p.peekOp("(") {
			return controller.TagExpr{}, p.errorf("expected ( after in")
		}
		p.pos++
		e := controller.TagExpr{Op: "in", Key: t.text}
		for {
			v, err := p.value()
			if err != nil {
				return e, err
			}
			e.Values = append(e.Values, v)
			if p.peekOp(",") {
				p.pos++
				continue
			}
			if !p.peekOp(")") {
				return e, p.errorf("expected , or ) in a list")
			}
			p.pos++
			return e, nil
		}
	}
	return controller.TagExpr{Op: "has", Key: t.text}, nil
}

func (p *targetParser) value() (string, error) {
	if p.pos >= len(p.toks) {
		return "", p.errorf("expected a value")
	}
	t := p.toks[p.pos]
	if t.kind == tokOp || t.kind == tokWord && isKeyword(t.text) {
		return "", p.errorf("expected a value, found %q", t.text)
	}
	p.pos++
	return t.text, nil
}
