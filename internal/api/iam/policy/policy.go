// Package policy owns IAM policy documents: parsing them with the checks
// and messages of AWS's MalformedPolicyDocument, and evaluating requests
// against them with AWS's documented logic (explicit deny beats allow
// beats the implicit deny), so that a policy written for AWS means the
// same thing on flowlog.
//
// Reference: IAM User Guide, "Policy evaluation logic" and "IAM JSON
// policy elements reference" (Version, Statement, Sid, Effect, Principal,
// NotPrincipal, Action, NotAction, Resource, NotResource, Condition).
package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Kind is what a document is for; it decides which elements it must and
// must not have.
type Kind int

const (
	// Identity is a policy attached to a user or role (inline or
	// managed): no Principal, Resource required.
	Identity Kind = iota
	// Trust is a role's assume-role policy: Principal required, no
	// Resource.
	Trust
)

// Effect is a statement's Effect.
type Effect string

// Effects.
const (
	Allow Effect = "Allow"
	Deny  Effect = "Deny"
)

// Versions a document may declare. Policy variables (${aws:username})
// are substituted only under Version2012.
const (
	Version2012 = "2012-10-17"
	Version2008 = "2008-10-17"
)

// Document is a parsed policy document.
type Document struct {
	Version    string
	ID         string
	Statements []Statement
}

// Statement is one statement of a document.
type Statement struct {
	// Index is the statement's position in the document (0-based).
	Index  int
	Sid    string
	Effect Effect
	// Principal and NotPrincipal (trust policies): principal type (AWS,
	// Service, Federated, CanonicalUser, or "*" for `"Principal": "*"`)
	// to values.
	Principal, NotPrincipal map[string][]string
	Action, NotAction       []string
	Resource, NotResource   []string
	Conditions              []Condition
}

// Condition is one (operator, key, values) triple of a Condition block.
type Condition struct {
	// Operator as written (StringEquals, ForAnyValue:StringLike,
	// IpAddressIfExists, …).
	Operator string
	// Key is the context key as written (aws:SourceIp); keys compare
	// case-insensitively.
	Key    string
	Values []string

	op       string // base operator, lower case, without IfExists and set prefix
	ifExists bool
	set      string // "", "foranyvalue" or "forallvalues"
}

// MalformedError is a document AWS would refuse with
// MalformedPolicyDocument; Message is AWS's wording.
type MalformedError struct{ Message string }

func (e *MalformedError) Error() string { return e.Message }

func malformed(format string, args ...any) error {
	return &MalformedError{Message: fmt.Sprintf(format, args...)}
}

// Parse parses and checks a policy document of the given kind.
func Parse(doc string, kind Kind) (*Document, error) {
	var top map[string]json.RawMessage
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&top); err != nil || top == nil {
		return nil, malformed("This policy contains invalid Json")
	}
	if dec.More() {
		return nil, malformed("This policy contains invalid Json")
	}
	d := &Document{}
	for k, v := range top {
		switch k {
		case "Version":
			if err := json.Unmarshal(v, &d.Version); err != nil {
				return nil, malformed("Syntax errors in policy.")
			}
			if d.Version != Version2012 && d.Version != Version2008 {
				return nil, malformed("The policy failed legacy parsing")
			}
		case "Id":
			if err := json.Unmarshal(v, &d.ID); err != nil {
				return nil, malformed("Syntax errors in policy.")
			}
		case "Statement":
		default:
			return nil, malformed("Syntax errors in policy.")
		}
	}
	raw, ok := top["Statement"]
	if !ok {
		return nil, malformed("Syntax errors in policy.")
	}
	var stmts []json.RawMessage
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '{' {
		stmts = []json.RawMessage{raw}
	} else if err := json.Unmarshal(raw, &stmts); err != nil {
		return nil, malformed("Syntax errors in policy.")
	}
	if len(stmts) == 0 {
		return nil, malformed("Syntax errors in policy.")
	}
	sids := map[string]bool{}
	for i, rs := range stmts {
		st, err := parseStatement(rs, kind)
		if err != nil {
			return nil, err
		}
		st.Index = i
		if st.Sid != "" {
			if sids[st.Sid] {
				return nil, malformed("Statement IDs (SID) in a single policy must be unique.")
			}
			sids[st.Sid] = true
		}
		d.Statements = append(d.Statements, st)
	}
	return d, nil
}

func parseStatement(raw json.RawMessage, kind Kind) (Statement, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return Statement{}, malformed("Syntax errors in policy.")
	}
	var st Statement
	var err error
	for k, v := range m {
		switch k {
		case "Sid":
			if json.Unmarshal(v, &st.Sid) != nil {
				return st, malformed("Syntax errors in policy.")
			}
			for _, r := range st.Sid {
				if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
					return st, malformed("Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*")
				}
			}
		case "Effect":
			var e string
			if json.Unmarshal(v, &e) != nil || (e != string(Allow) && e != string(Deny)) {
				return st, malformed("Syntax errors in policy.")
			}
			st.Effect = Effect(e)
		case "Action", "NotAction":
			list, err := stringOrList(v)
			if err != nil {
				return st, err
			}
			for _, a := range list {
				if a != "*" && !strings.Contains(a, ":") {
					return st, malformed("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.")
				}
			}
			if k == "Action" {
				st.Action = list
			} else {
				st.NotAction = list
			}
		case "Resource", "NotResource":
			if kind == Trust {
				return st, malformed("Has prohibited field %s", k)
			}
			list, err := stringOrList(v)
			if err != nil {
				return st, err
			}
			for _, r := range list {
				if r != "*" && !strings.HasPrefix(r, "arn:") {
					return st, malformed("Resource %s must be in ARN format or \"*\".", r)
				}
			}
			if k == "Resource" {
				st.Resource = list
			} else {
				st.NotResource = list
			}
		case "Principal", "NotPrincipal":
			if kind == Identity {
				return st, malformed("Policy document should not specify a principal.")
			}
			p, err := parsePrincipal(v)
			if err != nil {
				return st, err
			}
			if k == "Principal" {
				st.Principal = p
			} else {
				st.NotPrincipal = p
			}
		case "Condition":
			if st.Conditions, err = parseConditions(v); err != nil {
				return st, err
			}
		default:
			return st, malformed("Syntax errors in policy.")
		}
	}
	if st.Effect == "" {
		return st, malformed("Syntax errors in policy.")
	}
	if _, a := m["Action"]; a {
		if _, na := m["NotAction"]; na {
			return st, malformed("Syntax errors in policy.")
		}
	} else if _, na := m["NotAction"]; !na {
		return st, malformed("Policy statement must contain actions.")
	}
	_, r := m["Resource"]
	_, nr := m["NotResource"]
	if r && nr {
		return st, malformed("Syntax errors in policy.")
	}
	if kind == Identity && !r && !nr {
		return st, malformed("Policy statement must contain resources.")
	}
	if kind == Trust {
		if st.Principal == nil && st.NotPrincipal == nil {
			return st, malformed("Missing required field Principal")
		}
		if st.Principal != nil && st.NotPrincipal != nil {
			return st, malformed("Syntax errors in policy.")
		}
	}
	return st, nil
}

// stringOrList decodes a JSON string or array of strings (AWS accepts
// both wherever a list is expected).
func stringOrList(v json.RawMessage) ([]string, error) {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return []string{s}, nil
	}
	var l []string
	if json.Unmarshal(v, &l) != nil || len(l) == 0 {
		return nil, malformed("Syntax errors in policy.")
	}
	return l, nil
}

func parsePrincipal(v json.RawMessage) (map[string][]string, error) {
	var s string
	if json.Unmarshal(v, &s) == nil {
		if s != "*" {
			return nil, malformed("Invalid principal in policy: %q", s)
		}
		return map[string][]string{"*": {"*"}}, nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(v, &m) != nil || len(m) == 0 {
		return nil, malformed("Syntax errors in policy.")
	}
	out := map[string][]string{}
	for typ, raw := range m {
		switch typ {
		case "AWS", "Service", "Federated", "CanonicalUser":
		default:
			return nil, malformed("Invalid principal in policy: %q", typ)
		}
		list, err := stringOrList(raw)
		if err != nil {
			return nil, err
		}
		for _, p := range list {
			if p == "" {
				return nil, malformed("Invalid principal in policy: \"%s\":\"\"", strings.ToUpper(typ))
			}
		}
		out[typ] = list
	}
	return out, nil
}

// operators are the condition operators flowlog evaluates, lower case.
var operators = map[string]bool{
	"stringequals": true, "stringnotequals": true,
	"stringequalsignorecase": true, "stringnotequalsignorecase": true,
	"stringlike": true, "stringnotlike": true,
	"ipaddress": true, "notipaddress": true,
	"bool": true, "null": true,
	"arnequals": true, "arnnotequals": true, "arnlike": true, "arnnotlike": true,
}

func parseConditions(v json.RawMessage) ([]Condition, error) {
	var m map[string]map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	if dec.Decode(&m) != nil {
		return nil, malformed("Syntax errors in policy.")
	}
	var out []Condition
	for opName, keys := range m {
		c := Condition{Operator: opName}
		base := strings.ToLower(opName)
		if p, rest, ok := strings.Cut(base, ":"); ok {
			if p != "foranyvalue" && p != "forallvalues" {
				return nil, malformed("Invalid Condition type : %s", opName)
			}
			c.set, base = p, rest
		}
		if b, ok := strings.CutSuffix(base, "ifexists"); ok && b != "null" {
			c.ifExists, base = true, b
		}
		if !operators[base] {
			return nil, malformed("Invalid Condition type : %s", opName)
		}
		c.op = base
		for key, raw := range keys {
			if !strings.Contains(key, ":") {
				return nil, malformed("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.")
			}
			vals, err := conditionValues(raw)
			if err != nil {
				return nil, err
			}
			cc := c
			cc.Key, cc.Values = key, vals
			if err := cc.check(); err != nil {
				return nil, err
			}
			out = append(out, cc)
		}
	}
	// Map order is random; keep evaluation and explanations stable.
	sort.Slice(out, func(i, j int) bool {
		if out[i].Operator != out[j].Operator {
			return out[i].Operator < out[j].Operator
		}
		return out[i].Key < out[j].Key
	})
	return out, nil
}

// conditionValues accepts a string, number, boolean or a list of them.
func conditionValues(raw json.RawMessage) ([]string, error) {
	var one any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&one) != nil {
		return nil, malformed("Syntax errors in policy.")
	}
	scalar := func(x any) (string, bool) {
		switch x := x.(type) {
		case string:
			return x, true
		case json.Number:
			return x.String(), true
		case bool:
			return strconv.FormatBool(x), true
		}
		return "", false
	}
	if s, ok := scalar(one); ok {
		return []string{s}, nil
	}
	list, ok := one.([]any)
	if !ok || len(list) == 0 {
		return nil, malformed("Syntax errors in policy.")
	}
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, ok := scalar(x)
		if !ok {
			return nil, malformed("Syntax errors in policy.")
		}
		out = append(out, s)
	}
	return out, nil
}

// check validates the values an operator needs to parse (addresses,
// booleans).
func (c Condition) check() error {
	switch c.op {
	case "ipaddress", "notipaddress":
		for _, v := range c.Values {
			if _, err := parseCIDR(v); err != nil {
				return malformed("Invalid IP address or CIDR in condition %s: %s", c.Operator, v)
			}
		}
	case "bool", "null":
		for _, v := range c.Values {
			if !strings.EqualFold(v, "true") && !strings.EqualFold(v, "false") {
				return malformed("Invalid value for condition %s: %s (want true or false)", c.Operator, v)
			}
		}
	}
	return nil
}
