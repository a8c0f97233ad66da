package analyze

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flowlog/flowlog/flow"
)

// Expr is a compiled --where expression: a small language over record
// fields.
//
//	action = "REJECT" and dstport in (22, 3389)
//	srcaddr in 10.0.0.0/8 and not (dstaddr in (10.0.0.0/8, 192.168.0.0/16))
//	protocol = tcp and tcp-flags = 2 and bytes >= 1000
//	start >= "2024-06-20T16:00:00Z" or log-status != OK
//
// Comparisons are field op value with = (also ==), !=, <, <=, > and >=;
// field in (v, …) and field not in (…) test membership, and an address
// field in a CIDR prefix (or a list of addresses and prefixes) tests
// containment. and binds tighter than or; not negates; parentheses group.
// Field names are those of formats (dstport, tcp-flags; '_' may stand for
// '-'). Values are numbers, addresses, prefixes, or strings in double or
// single quotes; enum values (ACCEPT, OK, ingress) and protocol names
// (tcp, udp, icmp, icmpv6) may go unquoted. A field without a value ("-")
// matches no comparison; field = "-" tests that it has none. Times (start,
// end) also take RFC 3339 strings and dates.
type Expr struct {
	root   node
	fields flow.FieldSet
}

// Match reports whether r satisfies the expression.
func (e *Expr) Match(r *flow.Record) bool { return e.root.match(r) }

// Fields returns the fields the expression reads.
func (e *Expr) Fields() flow.FieldSet { return e.fields }

// String returns the expression in canonical form: ParseExpr of it gives
// the same expression back.
func (e *Expr) String() string {
	var b strings.Builder
	e.root.write(&b)
	return b.String()
}

// ExprError reports where an expression is wrong.
type ExprError struct {
	Input  string // the expression
	Column int    // 1-based, in characters
	Msg    string
}

func (e *ExprError) Error() string { return "column " + strconv.Itoa(e.Column) + ": " + e.Msg }

// Caret returns the expression with a caret under the column, for
// terminals.
func (e *ExprError) Caret() string {
	line := strings.ReplaceAll(e.Input, "\t", " ")
	return "  " + line + "\n  " + strings.Repeat(" ", max(e.Column-1, 0)) + "^"
}

// ParseExpr compiles a --where expression.
func ParseExpr(s string) (*Expr, error) {
	p := &exprParser{in: s}
	if err := p.lex(); err != nil {
		return nil, err
	}
	if p.peek().kind == tkEOF {
		return nil, p.errAt(p.peek(), "empty expression: want a comparison such as dstport = 22")
	}
	root, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tkEOF {
		if t.kind == tkRParen {
			return nil, p.errAt(t, `")" without a matching "("`)
		}
		return nil, p.errAt(t, fmt.Sprintf("expected and, or or the end of the expression, found %s", t.describe()))
	}
	return &Expr{root: root, fields: p.fields}, nil
}

type tokenKind uint8

const (
	tkEOF tokenKind = iota
	tkWord
	tkString
	tkOp
	tkLParen
	tkRParen
	tkComma
)

type token struct {
	kind tokenKind
	text string // the word, the unquoted string, or the operator
	pos  int    // byte offset in the input
}

func (t token) describe() string {
	switch t.kind {
	case tkEOF:
		return "the end of the expression"
	case tkString:
		return strconv.Quote(t.text)
	}
	return `"` + t.text + `"`
}

func (t token) isKeyword(k string) bool { return t.kind == tkWord && strings.EqualFold(t.text, k) }

type exprParser struct {
	in     string
	toks   []token
	i      int
	depth  int // open parentheses
	fields flow.FieldSet
}

func (p *exprParser) column(pos int) int { return utf8.RuneCountInString(p.in[:pos]) + 1 }

func (p *exprParser) errAt(t token, msg string) *ExprError {
	return &ExprError{Input: p.in, Column: p.column(t.pos), Msg: msg}
}

func isWordByte(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', '(', ')', ',', '=', '!', '<', '>', '"', '\'':
		return false
	}
	return true
}

func (p *exprParser) lex() error {
	s := p.in
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '(':
			p.toks = append(p.toks, token{tkLParen, "(", i})
			i++
		case c == ')':
			p.toks = append(p.toks, token{tkRParen, ")", i})
			i++
		case c == ',':
			p.toks = append(p.toks, token{tkComma, ",", i})
			i++
		case c == '=' || c == '!' || c == '<' || c == '>':
			op := s[i : i+1]
			if i+1 < len(s) && s[i+1] == '=' {
				op = s[i : i+2]
			}
			if op == "!" {
				return &ExprError{Input: s, Column: p.column(i), Msg: `"!" alone is not an operator: use != or not`}
			}
			start := i
			i += len(op)
			if op == "==" {
				op = "="
			}
			p.toks = append(p.toks, token{tkOp, op, start})
		case c == '"' || c == '\'':
			start := i
			var b strings.Builder
			i++
			closed := false
			for i < len(s) {
				if s[i] == '\\' && i+1 < len(s) {
					b.WriteByte(s[i+1])
					i += 2
					continue
				}
				if s[i] == c {
					closed = true
					i++
					break
				}
				b.WriteByte(s[i])
				i++
			}
			if !closed {
				return &ExprError{Input: s, Column: p.column(start), Msg: "string is not closed: add the closing " + string(c)}
			}
			p.toks = append(p.toks, token{tkString, b.String(), start})
		default:
			start := i
			for i < len(s) && isWordByte(s[i]) {
				i++
			}
			p.toks = append(p.toks, token{tkWord, s[start:i], start})
		}
	}
	p.toks = append(p.toks, token{tkEOF, "", len(s)})
	return nil
}

func (p *exprParser) peek() token { return p.toks[p.i] }
func (p *exprParser) next() token {
	t := p.toks[p.i]
	if t.kind != tkEOF {
		p.i++
	}
	return t
}

func (p *exprParser) parseOr() (node, error) {
	l, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for p.peek().isKeyword("or") {
		p.next()
		r, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		l = orNode{l, r}
	}
	return l, nil
}

func (p *exprParser) parseAnd() (node, error) {
	l, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	for p.peek().isKeyword("and") {
		p.next()
		r, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		l = andNode{l, r}
	}
	return l, nil
}

// maxDepth bounds nesting so that a hostile expression cannot exhaust the
// stack.
const maxDepth = 100

func (p *exprParser) parseUnary() (node, error) {
	nots := 0
	for p.peek().isKeyword("not") {
		p.next()
		nots++
	}
	n, err := p.parsePrimary()
	if err != nil {
		return nil, err
	}
	for range nots {
		n = notNode{n}
	}
	return n, nil
}

func (p *exprParser) parsePrimary() (node, error) {
	t := p.peek()
	switch t.kind {
	case tkLParen:
		if p.depth >= maxDepth {
			return nil, p.errAt(t, fmt.Sprintf("more than %d nested parentheses", maxDepth))
		}
		p.next()
		p.depth++
		n, err := p.parseOr()
		p.depth--
		if err != nil {
			return nil, err
		}
		if c := p.peek(); c.kind != tkRParen {
			return nil, p.errAt(c, fmt.Sprintf(`expected ")" to close the "(" at column %d, found %s`, p.column(t.pos), c.describe()))
		}
		p.next()
		return parenNode{n}, nil
	case tkWord:
		if t.isKeyword("and") || t.isKeyword("or") || t.isKeyword("in") {
			return nil, p.errAt(t, fmt.Sprintf("expected a field name, found %s", t.describe()))
		}
		return p.parseComparison()
	case tkEOF:
		return nil, p.errAt(t, "expected a comparison, found the end of the expression")
	}
	return nil, p.errAt(t, fmt.Sprintf("expected a field name, found %s", t.describe()))
}

// fieldByWord resolves a field name as written in an expression.
func fieldByWord(w string) (flow.FieldID, bool) {
	return flow.FieldByName(strings.ReplaceAll(strings.ToLower(w), "_", "-"))
}

func (p *exprParser) parseComparison() (node, error) {
	ft := p.next()
	id, ok := fieldByWord(ft.text)
	if !ok {
		msg := fmt.Sprintf("unknown field %q", ft.text)
		if s := closestField(ft.text); s != "" {
			msg += "; did you mean " + s + "?"
		}
		return nil, p.errAt(ft, msg+" (see 'flowlog format fields')")
	}
	p.fields = p.fields.With(id)
	t := p.next()
	neg := false
	if t.isKeyword("not") {
		neg = true
		t = p.next()
		if !t.isKeyword("in") {
			return nil, p.errAt(t, fmt.Sprintf(`expected "in" after "%s not", found %s`, ft.text, t.describe()))
		}
	}
	if t.isKeyword("in") {
		return p.parseIn(id, ft, neg)
	}
	if t.kind != tkOp {
		return nil, p.errAt(t, fmt.Sprintf("expected an operator (=, !=, <, <=, >, >=, in) after %s, found %s", ft.text, t.describe()))
	}
	vt := p.next()
	if vt.kind != tkWord && vt.kind != tkString {
		return nil, p.errAt(vt, fmt.Sprintf("expected a value after %q, found %s", t.text, vt.describe()))
	}
	return p.compare(id, t, vt)
}

// compare builds field op value.
func (p *exprParser) compare(id flow.FieldID, opTok, vt token) (node, error) {
	op := opTok.text
	if vt.text == "-" {
		switch op {
		case "=":
			return presentNode{id: id, want: false}, nil
		case "!=":
			return presentNode{id: id, want: true}, nil
		}
		return nil, p.errAt(vt, fmt.Sprintf(`"-" (no value) only goes with = and !=, not %s`, op))
	}
	v, err := p.value(id, vt, true)
	if err != nil {
		return nil, err
	}
	if v.prefix.IsValid() {
		return nil, p.errAt(vt, fmt.Sprintf("%s is a network: write %s in %s", vt.text, id, vt.text))
	}
	if isEnum(id) && op != "=" && op != "!=" {
		return nil, p.errAt(opTok, fmt.Sprintf("%s only compares with = and !=", id))
	}
	return cmpNode{id: id, op: op, v: v}, nil
}

func (p *exprParser) parseIn(id flow.FieldID, ft token, neg bool) (node, error) {
	n := inNode{id: id, neg: neg}
	open := p.peek()
	if open.kind != tkLParen {
		// A single value: srcaddr in 10.0.0.0/8.
		vt := p.next()
		if vt.kind != tkWord && vt.kind != tkString {
			return nil, p.errAt(vt, fmt.Sprintf(`expected "(" and a list of values, or a network, after "in", found %s`, vt.describe()))
		}
		v, err := p.value(id, vt, false)
		if err != nil {
			return nil, err
		}
		n.vals = append(n.vals, v)
		return n, nil
	}
	p.next()
	for {
		vt := p.next()
		if vt.kind != tkWord && vt.kind != tkString {
			return nil, p.errAt(vt, fmt.Sprintf("expected a value in the list, found %s", vt.describe()))
		}
		v, err := p.value(id, vt, false)
		if err != nil {
			return nil, err
		}
		n.vals = append(n.vals, v)
		sep := p.next()
		if sep.kind == tkRParen {
			break
		}
		if sep.kind != tkComma {
			return nil, p.errAt(sep, fmt.Sprintf(`expected "," or ")" in the list that starts at column %d, found %s`, p.column(open.pos), sep.describe()))
		}
	}
	return n, nil
}

// protocolNames are the protocol names accepted for the protocol field.
var protocolNames = map[string]uint64{"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "ah": 51, "icmpv6": 58, "sctp": 132}

// value reads a value of field id.
func (p *exprParser) value(id flow.FieldID, t token, scalarOnly bool) (value, error) {
	s := t.text
	switch {
	case kindOf(id) == kindNumber:
		if id == flow.FieldProtocol {
			if n, ok := protocolNames[strings.ToLower(s)]; ok {
				return value{num: n, text: strings.ToLower(s)}, nil
			}
		}
		if id == flow.FieldStart || id == flow.FieldEnd {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				return value{num: uint64(n), neg: n < 0, text: strconv.FormatInt(n, 10)}, nil
			}
			tm, ok := parseAbsTime(s)
			if !ok {
				return value{}, p.errAt(t, fmt.Sprintf("%q is not a time for %s: want Unix seconds, an RFC 3339 time or a date", s, id))
			}
			n := tm.Unix()
			return value{num: uint64(n), neg: n < 0, text: quoteString(tm.UTC().Format(time.RFC3339))}, nil
		}
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return value{}, p.errAt(t, fmt.Sprintf("%q is not a number (%s is numeric)", s, id))
		}
		if max := maxOf(id); n > max {
			return value{}, p.errAt(t, fmt.Sprintf("%s is out of range for %s (0…%d)", s, id, max))
		}
		return value{num: n, text: strconv.FormatUint(n, 10)}, nil
	case kindOf(id) == kindAddr:
		if strings.Contains(s, "/") {
			pfx, err := netip.ParsePrefix(s)
			if err != nil {
				return value{}, p.errAt(t, fmt.Sprintf("%q is not a network (CIDR such as 10.0.0.0/8): %v", s, err))
			}
			return value{prefix: pfx.Masked(), text: pfx.Masked().String()}, nil
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return value{}, p.errAt(t, fmt.Sprintf("%q is not an IP address", s))
		}
		return value{addr: a, text: a.String()}, nil
	case id == flow.FieldAction:
		switch strings.ToUpper(s) {
		case "ACCEPT":
			return value{num: uint64(flow.ActionAccept), text: "ACCEPT"}, nil
		case "REJECT":
			return value{num: uint64(flow.ActionReject), text: "REJECT"}, nil
		}
		return value{}, p.errAt(t, fmt.Sprintf("%q is not an action: want ACCEPT or REJECT", s))
	case id == flow.FieldLogStatus:
		switch strings.ToUpper(s) {
		case "OK":
			return value{num: uint64(flow.LogStatusOK), text: "OK"}, nil
		case "NODATA":
			return value{num: uint64(flow.LogStatusNoData), text: "NODATA"}, nil
		case "SKIPDATA":
			return value{num: uint64(flow.LogStatusSkipData), text: "SKIPDATA"}, nil
		}
		return value{}, p.errAt(t, fmt.Sprintf("%q is not a log status: want OK, NODATA or SKIPDATA", s))
	case id == flow.FieldFlowDirection:
		switch strings.ToLower(s) {
		case "ingress":
			return value{num: uint64(flow.DirectionIngress), text: "ingress"}, nil
		case "egress":
			return value{num: uint64(flow.DirectionEgress), text: "egress"}, nil
		}
		return value{}, p.errAt(t, fmt.Sprintf("%q is not a flow direction: want ingress or egress", s))
	}
	if s == "" {
		return value{}, p.errAt(t, fmt.Sprintf("empty string for %s: a missing value is written -", id))
	}
	return value{str: s, isStr: true, text: quoteString(s)}, nil
}

// quoteString writes s in double quotes, escaping only what the lexer
// needs escaped, so that it reads back as s.
func quoteString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

func maxOf(id flow.FieldID) uint64 {
	switch id {
	case flow.FieldSrcPort, flow.FieldDstPort:
		return math.MaxUint16
	case flow.FieldVersion, flow.FieldProtocol, flow.FieldTCPFlags, flow.FieldTrafficPath:
		return math.MaxUint8
	}
	return math.MaxUint64
}

func isEnum(id flow.FieldID) bool {
	return id == flow.FieldAction || id == flow.FieldLogStatus || id == flow.FieldFlowDirection
}

// closestField suggests a field for a misspelt name, when one is close.
func closestField(w string) string {
	if f, d := flow.ClosestField(w); d < 3 {
		return f
	}
	return ""
}

// value is a typed constant of an expression.
type value struct {
	num    uint64 // numbers (two's complement when neg), enums
	neg    bool   // a negative time
	addr   netip.Addr
	prefix netip.Prefix
	str    string
	isStr  bool
	text   string // canonical spelling
}

type node interface {
	match(r *flow.Record) bool
	write(b *strings.Builder)
}

type orNode struct{ l, r node }

func (n orNode) match(r *flow.Record) bool { return n.l.match(r) || n.r.match(r) }
func (n orNode) write(b *strings.Builder) {
	n.l.write(b)
	b.WriteString(" or ")
	n.r.write(b)
}

type andNode struct{ l, r node }

func (n andNode) match(r *flow.Record) bool { return n.l.match(r) && n.r.match(r) }
func (n andNode) write(b *strings.Builder) {
	n.l.write(b)
	b.WriteString(" and ")
	n.r.write(b)
}

type notNode struct{ n node }

func (n notNode) match(r *flow.Record) bool { return !n.n.match(r) }
func (n notNode) write(b *strings.Builder) {
	b.WriteString("not ")
	n.n.write(b)
}

type parenNode struct{ n node }

func (n parenNode) match(r *flow.Record) bool { return n.n.match(r) }
func (n parenNode) write(b *strings.Builder) {
	b.WriteByte('(')
	n.n.write(b)
	b.WriteByte(')')
}

type presentNode struct {
	id   flow.FieldID
	want bool
}

func (n presentNode) match(r *flow.Record) bool { return r.Present.Has(n.id) == n.want }
func (n presentNode) write(b *strings.Builder) {
	b.WriteString(n.id.String())
	if n.want {
		b.WriteString(" != -")
	} else {
		b.WriteString(" = -")
	}
}

type cmpNode struct {
	id flow.FieldID
	op string
	v  value
}

func (n cmpNode) write(b *strings.Builder) {
	b.WriteString(n.id.String())
	b.WriteByte(' ')
	b.WriteString(n.op)
	b.WriteByte(' ')
	b.WriteString(n.v.text)
}

func (n cmpNode) match(r *flow.Record) bool {
	if !r.Present.Has(n.id) {
		return false
	}
	c, ok := compareField(r, n.id, &n.v)
	if !ok {
		return n.op == "!="
	}
	switch n.op {
	case "=":
		return c == 0
	case "!=":
		return c != 0
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	case ">=":
		return c >= 0
	}
	return false
}

// compareField compares field id of r with v: -1, 0 or +1. ok is false
// when they cannot be ordered (an IPv4 field against an IPv6 address).
func compareField(r *flow.Record, id flow.FieldID, v *value) (int, bool) {
	switch kindOf(id) {
	case kindNumber:
		if id == flow.FieldStart || id == flow.FieldEnd {
			x := r.Start
			if id == flow.FieldEnd {
				x = r.End
			}
			return cmpInt(x, int64(v.num)), true
		}
		return cmpUint(numField(r, id), v.num), true
	case kindAddr:
		a := addrOf(r, id)
		if a.Is4() != v.addr.Is4() {
			return 0, false
		}
		return a.Compare(v.addr), true
	}
	switch id {
	case flow.FieldAction:
		return cmpUint(uint64(r.Action), v.num), true
	case flow.FieldLogStatus:
		return cmpUint(uint64(r.LogStatus), v.num), true
	case flow.FieldFlowDirection:
		return cmpUint(uint64(r.FlowDirection), v.num), true
	}
	return strings.Compare(r.StringValue(id), v.str), true
}

type inNode struct {
	id   flow.FieldID
	neg  bool
	vals []value
}

func (n inNode) write(b *strings.Builder) {
	b.WriteString(n.id.String())
	if n.neg {
		b.WriteString(" not")
	}
	b.WriteString(" in (")
	for i, v := range n.vals {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(v.text)
	}
	b.WriteByte(')')
}

func (n inNode) match(r *flow.Record) bool {
	if !r.Present.Has(n.id) {
		return false
	}
	found := false
	if kindOf(n.id) == kindAddr {
		a := addrOf(r, n.id)
		for i := range n.vals {
			v := &n.vals[i]
			if v.prefix.IsValid() && v.prefix.Contains(a) || v.addr.IsValid() && a == v.addr {
				found = true
				break
			}
		}
	} else {
		found = slices.ContainsFunc(n.vals, func(v value) bool {
			c, ok := compareField(r, n.id, &v)
			return ok && c == 0
		})
	}
	return found != n.neg
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// numField returns an unsigned numeric field of r.
func numField(r *flow.Record, id flow.FieldID) uint64 {
	switch id {
	case flow.FieldVersion:
		return uint64(r.Version)
	case flow.FieldSrcPort:
		return uint64(r.SrcPort)
	case flow.FieldDstPort:
		return uint64(r.DstPort)
	case flow.FieldProtocol:
		return uint64(r.Protocol)
	case flow.FieldPackets:
		return r.Packets
	case flow.FieldBytes:
		return r.Bytes
	case flow.FieldTCPFlags:
		return uint64(r.TCPFlags)
	case flow.FieldTrafficPath:
		return uint64(r.TrafficPath)
	case flow.FieldStart:
		return uint64(r.Start)
	case flow.FieldEnd:
		return uint64(r.End)
	}
	return 0
}

func addrOf(r *flow.Record, id flow.FieldID) netip.Addr {
	switch id {
	case flow.FieldSrcAddr:
		return r.SrcAddr
	case flow.FieldDstAddr:
		return r.DstAddr
	case flow.FieldPktSrcAddr:
		return r.PktSrcAddr
	case flow.FieldPktDstAddr:
		return r.PktDstAddr
	}
	return netip.Addr{}
}
