package policy

import (
	"net/netip"
	"strings"
	"unicode/utf8"
)

// Context holds a request's condition keys (aws:SourceIp, aws:username,
// aws:SecureTransport, aws:PrincipalArn, aws:RequestedRegion, …). Keys
// are case-insensitive; a key may have several values.
type Context map[string][]string

// Set sets key to values.
func (c Context) Set(key string, values ...string) { c[strings.ToLower(key)] = values }

// Get returns key's values and whether the request has the key.
func (c Context) Get(key string) ([]string, bool) {
	v, ok := c[strings.ToLower(key)]
	return v, ok
}

// Request is one authorization question.
type Request struct {
	// Action is service:Operation (ec2:CreateFlowLogs); actions compare
	// case-insensitively.
	Action string
	// Resource is the ARN acted on, or "*" for actions without a
	// resource.
	Resource string
	// PrincipalType and PrincipalID name the requester for trust
	// policies: ("Service", "vpc-flow-logs.amazonaws.com") or ("AWS",
	// an ARN or account id).
	PrincipalType, PrincipalID string
	Context                    Context
}

// Decision is the outcome of an evaluation.
type Decision int

// Decisions, weakest first.
const (
	// ImplicitDeny: no statement allows the request (the default).
	ImplicitDeny Decision = iota
	// Allowed: a statement allows it and none denies it.
	Allowed
	// ExplicitDeny: a Deny statement applies; nothing overrides it.
	ExplicitDeny
)

func (d Decision) String() string {
	switch d {
	case Allowed:
		return "allowed"
	case ExplicitDeny:
		return "explicit deny"
	}
	return "implicit deny"
}

// Policy is a document with a name for explanations.
type Policy struct {
	// Name says where the policy comes from ("managed policy
	// arn:aws:iam::…:policy/x", "inline policy p of user u").
	Name string
	Doc  *Document
}

// Match is a statement that applied to the request.
type Match struct {
	Policy    int // index in the evaluated policies
	Statement int // index in the policy's document
	Sid       string
	Effect    Effect
}

// Result is an evaluation's decision and every statement that applied.
type Result struct {
	Decision Decision
	Matches  []Match
}

// Deciding returns the statement that decided the result: the first Deny
// for an explicit deny, the first Allow when allowed; false for an
// implicit deny.
func (r Result) Deciding() (Match, bool) {
	want := Allow
	switch r.Decision {
	case ExplicitDeny:
		want = Deny
	case ImplicitDeny:
		return Match{}, false
	}
	for _, m := range r.Matches {
		if m.Effect == want {
			return m, true
		}
	}
	return Match{}, false
}

// Evaluate decides r against policies as AWS does for identity-based
// policies within one account (IAM User Guide, "Policy evaluation logic",
// "Determining whether a request is allowed or denied within an
// account"): every statement of every policy is evaluated; an applicable
// Deny is an explicit deny and overrides any Allow; otherwise an
// applicable Allow allows; otherwise the request is implicitly denied.
func Evaluate(policies []Policy, r Request) Result {
	var res Result
	for pi, p := range policies {
		if p.Doc == nil {
			continue
		}
		for _, st := range p.Doc.Statements {
			if !st.applies(p.Doc.Version, r) {
				continue
			}
			res.Matches = append(res.Matches, Match{Policy: pi, Statement: st.Index, Sid: st.Sid, Effect: st.Effect})
			switch {
			case st.Effect == Deny:
				res.Decision = ExplicitDeny
			case res.Decision == ImplicitDeny:
				res.Decision = Allowed
			}
		}
	}
	return res
}

// applies reports whether the statement's Action, Resource, Principal
// and Condition elements all match r (IAM JSON policy elements
// reference: NotAction/NotResource/NotPrincipal match everything except
// what they list).
func (st *Statement) applies(version string, r Request) bool {
	if st.Action != nil && !anyMatch(st.Action, r.Action, matchAction) {
		return false
	}
	if st.NotAction != nil && anyMatch(st.NotAction, r.Action, matchAction) {
		return false
	}
	vars := version == Version2012
	if st.Resource != nil && !st.resourceMatch(st.Resource, vars, r) {
		return false
	}
	if st.NotResource != nil && st.resourceMatch(st.NotResource, vars, r) {
		return false
	}
	if st.Principal != nil && !principalMatch(st.Principal, r) {
		return false
	}
	if st.NotPrincipal != nil && principalMatch(st.NotPrincipal, r) {
		return false
	}
	for _, c := range st.Conditions {
		if !c.holds(vars, r.Context) {
			return false
		}
	}
	return true
}

func anyMatch(patterns []string, v string, match func(p, v string) bool) bool {
	for _, p := range patterns {
		if match(p, v) {
			return true
		}
	}
	return false
}

// matchAction matches an Action pattern: case-insensitive, with * and ?.
func matchAction(p, v string) bool { return Glob(strings.ToLower(p), strings.ToLower(v)) }

func (st *Statement) resourceMatch(patterns []string, vars bool, r Request) bool {
	for _, p := range patterns {
		if vars {
			var ok bool
			if p, ok = substitute(p, r.Context); !ok {
				continue
			}
		}
		if MatchARN(p, r.Resource) {
			return true
		}
	}
	return false
}

func principalMatch(pr map[string][]string, r Request) bool {
	if _, any := pr["*"]; any {
		return true
	}
	for _, v := range pr[r.PrincipalType] {
		switch {
		case v == "*":
			return true
		case r.PrincipalType == "Service" && strings.EqualFold(v, r.PrincipalID):
			return true
		case r.PrincipalType == "AWS" && awsPrincipalMatch(v, r.PrincipalID):
			return true
		case v == r.PrincipalID:
			return true
		}
	}
	return false
}

// awsPrincipalMatch: an account id or arn:aws:iam::ACCOUNT:root names
// every principal of the account.
func awsPrincipalMatch(v, id string) bool {
	if v == id {
		return true
	}
	acct := v
	if a, ok := strings.CutPrefix(v, "arn:aws:iam::"); ok {
		if a, ok = strings.CutSuffix(a, ":root"); !ok {
			return false
		}
		acct = a
	}
	parts := strings.SplitN(id, ":", 6)
	return len(parts) == 6 && parts[4] == acct || id == acct
}

// substitute replaces policy variables (${aws:username}) with the
// context's values, and ${*}, ${?}, ${$} with the literal characters
// (IAM policy elements: variables and tags). A variable whose key the
// request lacks makes the element not match: ok is false.
func substitute(s string, ctx Context) (string, bool) {
	if !strings.Contains(s, "${") {
		return s, true
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), true
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			b.WriteString(s)
			return b.String(), true
		}
		b.WriteString(s[:i])
		name := strings.TrimSpace(s[i+2 : i+j])
		switch name {
		case "*", "?", "$":
			// The escapes stand for literal characters; wildcards then
			// match them as themselves only approximately (a literal *
			// still acts as a wildcard here).
			b.WriteString(name)
		default:
			key, def, hasDef := strings.Cut(name, ",")
			vals, ok := ctx.Get(strings.TrimSpace(key))
			switch {
			case ok && len(vals) == 1:
				b.WriteString(vals[0])
			case hasDef:
				b.WriteString(strings.Trim(strings.TrimSpace(def), "'"))
			default:
				return "", false
			}
		}
		s = s[i+j+1:]
	}
}

var negated = map[string]bool{
	"stringnotequals": true, "stringnotequalsignorecase": true, "stringnotlike": true,
	"notipaddress": true, "arnnotequals": true, "arnnotlike": true,
}

// holds evaluates one condition (IAM JSON policy elements: Condition
// operators; "Creating a condition with multiple keys or values": values
// of one key are ORed, and for negated operators NORed; a key missing from
// the request fails a positive operator and satisfies a negated one,
// ...IfExists is satisfied by a missing key; ForAllValues is true and
// ForAnyValue false on a missing key).
func (c Condition) holds(vars bool, ctx Context) bool {
	have, present := ctx.Get(c.Key)
	if c.op == "null" {
		want := strings.EqualFold(c.Values[0], "true")
		return want == !present
	}
	if !present {
		switch {
		case c.ifExists:
			return true
		case c.set == "forallvalues":
			return true
		case c.set == "foranyvalue":
			return false
		}
		return negated[c.op]
	}
	test := func(v string) bool {
		m := false
		for _, p := range c.Values {
			if vars {
				var ok bool
				if p, ok = substitute(p, ctx); !ok {
					continue
				}
			}
			if c.positive(p, v) {
				m = true
				break
			}
		}
		if negated[c.op] {
			return !m
		}
		return m
	}
	switch c.set {
	case "forallvalues":
		for _, v := range have {
			if !test(v) {
				return false
			}
		}
		return true
	default: // ForAnyValue, and single-valued keys
		for _, v := range have {
			if test(v) {
				return true
			}
		}
		return false
	}
}

// positive is the non-negated form of the operator on one policy value p
// and one request value v.
func (c Condition) positive(p, v string) bool {
	switch c.op {
	case "stringequals", "stringnotequals":
		return p == v
	case "stringequalsignorecase", "stringnotequalsignorecase":
		return strings.EqualFold(p, v)
	case "stringlike", "stringnotlike":
		return Glob(p, v)
	case "ipaddress", "notipaddress":
		pfx, err := parseCIDR(p)
		if err != nil {
			return false
		}
		a, err := netip.ParseAddr(v)
		return err == nil && pfx.Contains(a.Unmap())
	case "bool":
		return strings.EqualFold(p, v)
	case "arnequals", "arnnotequals", "arnlike", "arnnotlike":
		return MatchARN(p, v)
	}
	return false
}

// parseCIDR accepts a prefix or a single address.
func parseCIDR(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, err
	}
	if p.Addr().Is4In6() {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// MatchARN matches an ARN pattern of a Resource element or an Arn*
// condition: "*" matches everything; otherwise each of the six
// colon-separated components is matched separately with * and ?, the
// last (the resource) including any further colons.
func MatchARN(pattern, arn string) bool {
	if pattern == "*" {
		return true
	}
	pp := strings.SplitN(pattern, ":", 6)
	ap := strings.SplitN(arn, ":", 6)
	if len(pp) != 6 || len(ap) != 6 {
		return Glob(pattern, arn)
	}
	for i := range pp {
		if !Glob(pp[i], ap[i]) {
			return false
		}
	}
	return true
}

// Glob matches s against pattern, where * matches any run of characters
// (also none) and ? exactly one. It is case-sensitive.
func Glob(pattern, s string) bool {
	// Iterative matcher with one backtrack point: linear in practice,
	// O(len(p)*len(s)) at worst, never exponential (fuzzed inputs).
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			if pattern[p] == '?' {
				// ? is one character, not one byte.
				_, n := utf8.DecodeRuneInString(s[i:])
				i += n
			} else {
				i++
			}
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
