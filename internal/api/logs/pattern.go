package logs

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// MaxPatternLength is the longest filter pattern CloudWatch Logs accepts.
const MaxPatternLength = 1024

// Pattern is a compiled CloudWatch Logs filter pattern, in one of the
// syntaxes AWS documents for unstructured events:
//
//   - "" (or only spaces): every event.
//   - terms: REJECT 443 — every term appears in the message (AND);
//     "1.2.3.4 5.6.7.8" quotes a phrase; -term excludes events holding
//     it; ?a ?b matches events holding any of them (OR). Matching is
//     case-sensitive and by substring.
//   - %regex%: the message matches the regular expression (Go's RE2
//     syntax, a superset of what AWS accepts).
//   - space-delimited: [version, account, eni, src = 10.0.2.*, dst,
//     srcport, dstport = 80 || dstport = 8080, protocol, packets,
//     bytes >= 400, start, end, action = REJECT, status] names the
//     message's space-separated fields (a field in double quotes or
//     square brackets is one field) and constrains them with = != < <=
//     > >=, joined by && and || and grouped with parentheses. A number
//     compares numerically; a string matches the whole field, * being a
//     wildcard; = %regex% and != %regex% match a regular expression
//     anywhere in the field. "..." stands for any number of fields; without it the
//     message must have exactly as many fields as the pattern.
//
// JSON patterns ({ $.field = … }) and anything else unrecognized are
// refused with an error naming what is not supported: a pattern never
// silently matches everything.
type Pattern struct {
	src     string
	all     bool
	and     []string // every one must be present
	not     []string // none may be present
	or      []string // one must be present (if any)
	re      *regexp.Regexp
	fields  []fieldItem // space-delimited form
	named   int         // named fields in fields
	cond    condExpr    // conjunction of the fields' conditions; nil: none
	hasCond bool
}

// fieldItem is one entry of a space-delimited pattern: a named field or
// "..." (any number of fields).
type fieldItem struct {
	name     string
	idx      int // of the name, in the bound values
	ellipsis bool
}

// String returns the pattern's source text.
func (p *Pattern) String() string { return p.src }

// MatchesAll reports whether the pattern matches every event.
func (p *Pattern) MatchesAll() bool { return p.all }

// Required returns substrings every matching message contains; a store
// may use them to skip messages before calling Match.
func (p *Pattern) Required() []string { return p.and }

// PatternError is a filter pattern the server does not understand.
type PatternError struct {
	Pattern string
	Offset  int // byte offset in Pattern of the problem
	Reason  string
}

func (e *PatternError) Error() string {
	return fmt.Sprintf("filter pattern %q: at offset %d: %s", e.Pattern, e.Offset, e.Reason)
}

// ParsePattern compiles a filter pattern.
func ParsePattern(src string) (*Pattern, error) {
	if len(src) > MaxPatternLength {
		return nil, &PatternError{Pattern: src, Offset: MaxPatternLength, Reason: fmt.Sprintf("longer than %d bytes", MaxPatternLength)}
	}
	p := &Pattern{src: src}
	t := strings.TrimSpace(src)
	lead := strings.Index(src, t)
	fail := func(off int, format string, args ...any) error {
		return &PatternError{Pattern: src, Offset: lead + off, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case t == "":
		p.all = true
		return p, nil
	case t[0] == '{':
		return nil, fail(0, "JSON filter patterns ({ $.field … }) are not supported here; use terms, %%regex%% or a space-delimited [field, …] pattern")
	case t[0] == '[':
		if err := p.parseFields(t, fail); err != nil {
			return nil, err
		}
		return p, nil
	case t[0] == '%':
		if len(t) < 2 || t[len(t)-1] != '%' {
			return nil, fail(0, "a regular expression pattern must end with %%")
		}
		if k := strings.IndexByte(t[1:len(t)-1], '%'); k >= 0 {
			return nil, fail(1+k, "one %%regex%% per pattern: combine alternatives with | inside it")
		}
		re, err := regexp.Compile(t[1 : len(t)-1])
		if err != nil {
			return nil, fail(1, "regular expression: %v", err)
		}
		p.re = re
		return p, nil
	}
	// Terms.
	i := 0
	for i < len(t) {
		if t[i] == ' ' || t[i] == '\t' {
			i++
			continue
		}
		start := i
		kind := byte(0)
		if t[i] == '?' || t[i] == '-' {
			kind = t[i]
			i++
			if i == len(t) || t[i] == ' ' || t[i] == '\t' {
				return nil, fail(start, "%q must be followed by a term", kind)
			}
		}
		var term string
		if t[i] == '"' {
			s, n, err := unquote(t[i:])
			if err != nil {
				return nil, fail(i, "%v", err)
			}
			term = s
			i += n
			if i < len(t) && t[i] != ' ' && t[i] != '\t' {
				return nil, fail(i, "a quoted term must be followed by a space")
			}
		} else {
			j := i
			for j < len(t) && t[j] != ' ' && t[j] != '\t' {
				switch t[j] {
				case '"':
					return nil, fail(j, "a quote inside a term: quote the whole term")
				case '{', '[', '%':
					if j == i {
						return nil, fail(j, "%q starts a JSON, space-delimited or regex pattern only at the start of the pattern", t[j])
					}
				}
				j++
			}
			term = t[i:j]
			i = j
		}
		switch kind {
		case '?':
			p.or = append(p.or, term)
		case '-':
			p.not = append(p.not, term)
		default:
			p.and = append(p.and, term)
		}
	}
	if len(p.or) > 0 && (len(p.and) > 0 || len(p.not) > 0) {
		return nil, fail(0, "?term (OR) terms cannot be combined with plain or -term terms in one pattern")
	}
	// An empty quoted phrase is in every message.
	p.and = dropEmpty(p.and)
	if len(p.and) == 0 && len(p.not) == 0 && len(p.or) == 0 {
		p.all = true
	}
	return p, nil
}

func dropEmpty(s []string) []string {
	out := s[:0]
	for _, v := range s {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// unquote reads a double-quoted string at the start of s (backslash
// escapes the next character) and returns it and the bytes it took.
func unquote(s string) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 == len(s) {
				return "", 0, errors.New("a backslash ends the pattern")
			}
			i++
			b.WriteByte(s[i])
		case '"':
			return b.String(), i + 1, nil
		default:
			b.WriteByte(s[i])
		}
	}
	return "", 0, errors.New("unterminated quote")
}

// Match reports whether msg matches the pattern.
func (p *Pattern) Match(msg string) bool {
	switch {
	case p.all:
		return true
	case p.re != nil:
		return p.re.MatchString(msg)
	case p.fields != nil:
		return p.matchFields(msg)
	}
	for _, t := range p.and {
		if !strings.Contains(msg, t) {
			return false
		}
	}
	for _, t := range p.not {
		if strings.Contains(msg, t) {
			return false
		}
	}
	if len(p.or) == 0 {
		return true
	}
	for _, t := range p.or {
		if strings.Contains(msg, t) {
			return true
		}
	}
	return false
}

// --- space-delimited patterns ---

type tokKind int

const (
	tokEOF tokKind = iota
	tokWord
	tokString
	tokOp // = != < <= > >=
	tokAnd
	tokOr
	tokLParen
	tokRParen
	tokComma
	tokRBracket
	tokRegex // %…%
)

type token struct {
	kind tokKind
	text string
	off  int
}

// lexFields splits the inside of [ … ] into tokens.
func lexFields(s string, base int, fail func(int, string, ...any) error) ([]token, error) {
	var toks []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case c == ',':
			toks = append(toks, token{tokComma, ",", base + i})
			i++
		case c == ']':
			toks = append(toks, token{tokRBracket, "]", base + i})
			i++
		case c == '(':
			toks = append(toks, token{tokLParen, "(", base + i})
			i++
		case c == ')':
			toks = append(toks, token{tokRParen, ")", base + i})
			i++
		case c == '&' || c == '|':
			if i+1 >= len(s) || s[i+1] != c {
				return nil, fail(base+i, "%q: want %c%c", c, c, c)
			}
			k := tokAnd
			if c == '|' {
				k = tokOr
			}
			toks = append(toks, token{k, s[i : i+2], base + i})
			i += 2
		case c == '=' || c == '!' || c == '<' || c == '>':
			op := string(c)
			if i+1 < len(s) && s[i+1] == '=' {
				op += "="
			}
			if op == "!" {
				return nil, fail(base+i, "'!': want !=")
			}
			if op == "==" {
				return nil, fail(base+i, "'==': want =")
			}
			toks = append(toks, token{tokOp, op, base + i})
			i += len(op)
		case c == '"':
			v, n, err := unquote(s[i:])
			if err != nil {
				return nil, fail(base+i, "%v", err)
			}
			toks = append(toks, token{tokString, v, base + i})
			i += n
		case c == '%':
			j := strings.IndexByte(s[i+1:], '%')
			if j < 0 {
				return nil, fail(base+i, "a regular expression must end with %%")
			}
			toks = append(toks, token{tokRegex, s[i+1 : i+1+j], base + i})
			i += j + 2
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t,]()&|=!<>\"%", rune(s[j])) {
				if s[j] == '[' || s[j] == '{' || s[j] == '$' {
					return nil, fail(base+j, "%q is not supported in a space-delimited pattern", s[j])
				}
				j++
			}
			toks = append(toks, token{tokWord, s[i:j], base + i})
			i = j
		}
	}
	return append(toks, token{tokEOF, "", base + len(s)}), nil
}

type fieldParser struct {
	toks  []token
	pos   int
	names map[string]int // field name → index in the bound values
	fail  func(int, string, ...any) error
}

func (fp *fieldParser) peek() token { return fp.toks[fp.pos] }
func (fp *fieldParser) next() token {
	t := fp.toks[fp.pos]
	if t.kind != tokEOF {
		fp.pos++
	}
	return t
}

func (p *Pattern) parseFields(t string, fail func(int, string, ...any) error) error {
	toks, err := lexFields(t[1:], 1, fail)
	if err != nil {
		return err
	}
	fp := &fieldParser{toks: toks, names: map[string]int{}, fail: fail}
	var conds []condExpr
	for {
		tk := fp.next()
		if tk.kind != tokWord {
			return fail(tk.off, "want a field name or ...")
		}
		if tk.text == "..." {
			p.fields = append(p.fields, fieldItem{ellipsis: true})
		} else {
			if !validFieldName(tk.text) {
				return fail(tk.off, "field name %q: want letters, digits and _", tk.text)
			}
			if _, dup := fp.names[tk.text]; dup {
				return fail(tk.off, "field %q is named twice", tk.text)
			}
			fp.names[tk.text] = len(fp.names)
			p.fields = append(p.fields, fieldItem{name: tk.text, idx: len(fp.names) - 1})
			if fp.peek().kind == tokOp {
				// The field's condition starts with its own comparison:
				// "dstport = 80 || dstport = 8080".
				fp.pos--
				c, err := fp.parseOr()
				if err != nil {
					return err
				}
				conds = append(conds, c)
			}
		}
		switch tk := fp.next(); tk.kind {
		case tokComma:
			continue
		case tokRBracket:
			if end := fp.next(); end.kind != tokEOF {
				return fail(end.off, "text after the closing ]")
			}
		default:
			return fail(tk.off, "want , or ] after a field, found %q", tk.text)
		}
		break
	}
	ellipses := 0
	for _, f := range p.fields {
		if f.ellipsis {
			ellipses++
		}
	}
	if ellipses > 2 {
		// Each "..." but the last is tried at every length: two keep
		// matching linear in the number of fields.
		return fail(0, "more than two ... in one pattern are not supported")
	}
	// Names used in conditions must be fields of the pattern.
	for _, c := range conds {
		if err := c.check(fp.names, fail); err != nil {
			return err
		}
	}
	if len(conds) > 0 {
		p.hasCond = true
		p.cond = andExpr(conds)
		p.and = p.cond.required(nil)
	}
	p.named = len(fp.names)
	return nil
}

func validFieldName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return s != ""
}

func (fp *fieldParser) parseOr() (condExpr, error) {
	l, err := fp.parseAnd()
	if err != nil {
		return nil, err
	}
	terms := []condExpr{l}
	for fp.peek().kind == tokOr {
		fp.next()
		r, err := fp.parseAnd()
		if err != nil {
			return nil, err
		}
		terms = append(terms, r)
	}
	if len(terms) == 1 {
		return l, nil
	}
	return orExpr(terms), nil
}

func (fp *fieldParser) parseAnd() (condExpr, error) {
	l, err := fp.parseUnary()
	if err != nil {
		return nil, err
	}
	terms := []condExpr{l}
	for fp.peek().kind == tokAnd {
		fp.next()
		r, err := fp.parseUnary()
		if err != nil {
			return nil, err
		}
		terms = append(terms, r)
	}
	if len(terms) == 1 {
		return l, nil
	}
	return andExpr(terms), nil
}

func (fp *fieldParser) parseUnary() (condExpr, error) {
	tk := fp.next()
	if tk.kind == tokLParen {
		e, err := fp.parseOr()
		if err != nil {
			return nil, err
		}
		if c := fp.next(); c.kind != tokRParen {
			return nil, fp.fail(c.off, "want ) to close the ( at offset %d", tk.off)
		}
		return e, nil
	}
	if tk.kind != tokWord || tk.text == "..." {
		return nil, fp.fail(tk.off, "want a comparison: field op value")
	}
	op := fp.next()
	if op.kind != tokOp {
		return nil, fp.fail(op.off, "want = != < <= > >= after %q", tk.text)
	}
	v := fp.next()
	if v.kind != tokWord && v.kind != tokString && v.kind != tokRegex {
		return nil, fp.fail(v.off, "want a value after %s", op.text)
	}
	c := &compare{field: tk.text, op: op.text, off: tk.off, str: v.text}
	if v.kind == tokRegex {
		if op.text != "=" && op.text != "!=" {
			return nil, fp.fail(op.off, "a regular expression compares with = or != only")
		}
		re, err := regexp.Compile(v.text)
		if err != nil {
			return nil, fp.fail(v.off+1, "regular expression: %v", err)
		}
		c.re = re
		return c, nil
	}
	if v.kind == tokWord {
		if n, err := strconv.ParseFloat(v.text, 64); err == nil {
			c.num, c.isNum = n, true
		}
	}
	if !c.isNum && op.text != "=" && op.text != "!=" {
		return nil, fp.fail(v.off, "%s needs a number, found %q", op.text, v.text)
	}
	return c, nil
}

// condExpr is a boolean condition on the fields of an event.
type condExpr interface {
	eval(f []string) bool
	check(names map[string]int, fail func(int, string, ...any) error) error
	// required appends substrings a message must hold to satisfy it.
	required(to []string) []string
}

type andExpr []condExpr
type orExpr []condExpr

func (a andExpr) eval(f []string) bool {
	for _, c := range a {
		if !c.eval(f) {
			return false
		}
	}
	return true
}

func (a andExpr) check(n map[string]int, fail func(int, string, ...any) error) error {
	for _, c := range a {
		if err := c.check(n, fail); err != nil {
			return err
		}
	}
	return nil
}

func (o orExpr) eval(f []string) bool {
	for _, c := range o {
		if c.eval(f) {
			return true
		}
	}
	return false
}

func (o orExpr) check(n map[string]int, fail func(int, string, ...any) error) error {
	return andExpr(o).check(n, fail)
}

func (a andExpr) required(to []string) []string {
	for _, c := range a {
		to = c.required(to)
	}
	return to
}

// required of an OR is nothing: no one term is needed.
func (o orExpr) required(to []string) []string { return to }

type compare struct {
	field string
	idx   int
	op    string
	off   int
	str   string
	num   float64
	isNum bool
	re    *regexp.Regexp // a %regex% value: matches anywhere in the field
}

func (c *compare) check(names map[string]int, fail func(int, string, ...any) error) error {
	i, ok := names[c.field]
	if !ok {
		return fail(c.off, "condition on %q, which is not a field of the pattern", c.field)
	}
	c.idx = i
	return nil
}

// required: a field equal to a string without wildcards is in the
// message.
func (c *compare) required(to []string) []string {
	if c.op == "=" && !c.isNum && c.re == nil && c.str != "" && !strings.Contains(c.str, "*") {
		return append(to, c.str)
	}
	return to
}

func (c *compare) eval(f []string) bool {
	v := f[c.idx]
	if c.re != nil {
		return c.re.MatchString(v) == (c.op == "=")
	}
	if c.isNum {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			// A field that is not a number ("-" in a NODATA record)
			// equals no number.
			return c.op == "!="
		}
		switch c.op {
		case "=":
			return n == c.num
		case "!=":
			return n != c.num
		case "<":
			return n < c.num
		case "<=":
			return n <= c.num
		case ">":
			return n > c.num
		default:
			return n >= c.num
		}
	}
	m := glob(c.str, v)
	if c.op == "!=" {
		return !m
	}
	return m
}

// glob reports whether s matches p, where * matches any run of bytes.
func glob(p, s string) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		if pi < len(p) && p[pi] == '*' {
			star, mark = pi, si
			pi++
			continue
		}
		if pi < len(p) && p[pi] == s[si] {
			pi++
			si++
			continue
		}
		if star < 0 {
			return false
		}
		pi = star + 1
		mark++
		si = mark
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// splitFields splits a message into space-delimited fields; a field in
// double quotes or square brackets is one field, without them.
func splitFields(msg string, out []string) []string {
	i := 0
	for i < len(msg) {
		for i < len(msg) && msg[i] == ' ' {
			i++
		}
		if i == len(msg) {
			break
		}
		var close byte
		switch msg[i] {
		case '"':
			close = '"'
		case '[':
			close = ']'
		}
		if close != 0 {
			if j := strings.IndexByte(msg[i+1:], close); j >= 0 {
				out = append(out, msg[i+1:i+1+j])
				i += j + 2
				continue
			}
		}
		j := strings.IndexByte(msg[i:], ' ')
		if j < 0 {
			j = len(msg) - i
		}
		out = append(out, msg[i:i+j])
		i += j
	}
	return out
}

func (p *Pattern) matchFields(msg string) bool {
	var buf [32]string
	fields := splitFields(msg, buf[:0])
	var store [32]string
	var bound []string
	if p.named > len(store) {
		bound = make([]string, p.named)
	} else {
		bound = store[:p.named]
	}
	return p.bind(0, fields, bound)
}

// bind assigns fields to the pattern's items from item i on, trying every
// length for each "...", and evaluates the conditions once all are bound.
func (p *Pattern) bind(i int, fields []string, bound []string) bool {
	if i == len(p.fields) {
		if len(fields) != 0 {
			return false
		}
		return !p.hasCond || p.cond.eval(bound)
	}
	it := p.fields[i]
	if !it.ellipsis {
		if len(fields) == 0 {
			return false
		}
		bound[it.idx] = fields[0]
		return p.bind(i+1, fields[1:], bound)
	}
	// Fixed items after this ellipsis up to the next one bound the
	// choice; the last ellipsis takes exactly what is left.
	rest := 0
	last := true
	for _, f := range p.fields[i+1:] {
		if f.ellipsis {
			last = false
			continue
		}
		rest++
	}
	if last {
		if len(fields) < rest {
			return false
		}
		return p.bind(i+1, fields[len(fields)-rest:], bound)
	}
	for skip := 0; skip+rest <= len(fields); skip++ {
		if p.bind(i+1, fields[skip:], bound) {
			return true
		}
	}
	return false
}
