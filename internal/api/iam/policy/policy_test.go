package policy

import (
	"errors"
	"strings"
	"testing"
)

func mustParse(t *testing.T, doc string, kind Kind) *Document {
	t.Helper()
	d, err := Parse(doc, kind)
	if err != nil {
		t.Fatalf("parse %s: %v", doc, err)
	}
	return d
}

func ctx(kv ...string) Context {
	c := Context{}
	for i := 0; i+1 < len(kv); i += 2 {
		c.Set(kv[i], kv[i+1])
	}
	return c
}

// The expectations below follow the IAM User Guide; each case names the
// section its expectation comes from.
func TestEvaluate(t *testing.T) {
	const acct = "123456789012"
	lg := "arn:aws:logs:us-east-1:" + acct + ":log-group:vpc-flow-logs"
	cases := []struct {
		name     string
		doc      string // statements, wrapped in a 2012-10-17 document
		extra    string // a second policy's statements ("" for none)
		action   string
		resource string
		ctx      Context
		want     Decision
	}{
		// "Policy evaluation logic": by default all requests are implicitly denied.
		{"no statement applies: implicit deny", `{"Effect":"Allow","Action":"logs:PutLogEvents","Resource":"*"}`, "", "ec2:CreateFlowLogs", "*", nil, ImplicitDeny},
		{"allow", `{"Effect":"Allow","Action":"ec2:CreateFlowLogs","Resource":"*"}`, "", "ec2:CreateFlowLogs", "*", nil, Allowed},
		// "IAM JSON policy elements: Action": action names are case-insensitive.
		{"action case-insensitive", `{"Effect":"Allow","Action":"EC2:createflowlogs","Resource":"*"}`, "", "ec2:CreateFlowLogs", "*", nil, Allowed},
		// "Action": wildcards * and ? in action names.
		{"action * wildcard", `{"Effect":"Allow","Action":"ec2:*FlowLogs","Resource":"*"}`, "", "ec2:DescribeFlowLogs", "*", nil, Allowed},
		{"action ? wildcard", `{"Effect":"Allow","Action":"logs:?utLogEvents","Resource":"*"}`, "", "logs:PutLogEvents", "*", nil, Allowed},
		{"action * does not cross services", `{"Effect":"Allow","Action":"logs:*","Resource":"*"}`, "", "ec2:CreateFlowLogs", "*", nil, ImplicitDeny},
		{"action list", `{"Effect":"Allow","Action":["logs:CreateLogGroup","logs:PutLogEvents"],"Resource":"*"}`, "", "logs:PutLogEvents", "*", nil, Allowed},
		// "IAM JSON policy elements: NotAction": Allow with NotAction allows everything not listed.
		{"NotAction allows the rest", `{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}`, "", "ec2:CreateFlowLogs", "*", nil, Allowed},
		{"NotAction excludes what it lists", `{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}`, "", "iam:CreateUser", "*", nil, ImplicitDeny},
		// "NotAction with Deny": deny everything except the listed actions.
		{"Deny NotAction denies the rest", `{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","NotAction":["logs:*"],"Resource":"*"}`, "", "ec2:DeleteFlowLogs", "*", nil, ExplicitDeny},
		{"Deny NotAction spares the listed", `{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","NotAction":["logs:*"],"Resource":"*"}`, "", "logs:PutLogEvents", lg, nil, Allowed},
		// "Policy evaluation logic": an explicit deny in any policy overrides any allow.
		{"explicit deny beats allow (same policy)", `{"Effect":"Allow","Action":"ec2:*","Resource":"*"},{"Effect":"Deny","Action":"ec2:DeleteFlowLogs","Resource":"*"}`, "", "ec2:DeleteFlowLogs", "*", nil, ExplicitDeny},
		{"explicit deny beats allow (other policy)", `{"Effect":"Allow","Action":"*","Resource":"*"}`, `{"Effect":"Deny","Action":"ec2:*","Resource":"*"}`, "ec2:CreateFlowLogs", "*", nil, ExplicitDeny},
		{"allow from either policy", `{"Effect":"Allow","Action":"logs:*","Resource":"*"}`, `{"Effect":"Allow","Action":"ec2:*","Resource":"*"}`, "ec2:CreateFlowLogs", "*", nil, Allowed},
		// "IAM JSON policy elements: Resource": ARN wildcards.
		{"resource exact", `{"Effect":"Allow","Action":"logs:PutLogEvents","Resource":"` + lg + `"}`, "", "logs:PutLogEvents", lg, nil, Allowed},
		{"resource other group", `{"Effect":"Allow","Action":"logs:PutLogEvents","Resource":"` + lg + `"}`, "", "logs:PutLogEvents", lg + "-2", nil, ImplicitDeny},
		{"resource wildcard suffix", `{"Effect":"Allow","Action":"logs:*","Resource":"arn:aws:logs:*:*:log-group:vpc-*"}`, "", "logs:PutLogEvents", lg, nil, Allowed},
		{"resource wildcard crosses colons in the resource part", `{"Effect":"Allow","Action":"logs:*","Resource":"arn:aws:logs:us-east-1:123456789012:log-group:*"}`, "", "logs:PutLogEvents", lg + ":log-stream:eni-1", nil, Allowed},
		{"resource region must match", `{"Effect":"Allow","Action":"logs:*","Resource":"arn:aws:logs:eu-west-1:*:*"}`, "", "logs:PutLogEvents", lg, nil, ImplicitDeny},
		{"resource ? wildcard", `{"Effect":"Allow","Action":"logs:*","Resource":"arn:aws:logs:us-east-?:*:*"}`, "", "logs:PutLogEvents", lg, nil, Allowed},
		{"resource is case-sensitive", `{"Effect":"Allow","Action":"logs:*","Resource":"arn:aws:logs:*:*:log-group:VPC-flow-logs"}`, "", "logs:PutLogEvents", lg, nil, ImplicitDeny},
		// Actions without resource-level permissions are requested on "*": only Resource "*" covers them.
		{"resource-less action needs *", `{"Effect":"Allow","Action":"ec2:DescribeFlowLogs","Resource":"arn:aws:ec2:*:*:vpc-flow-log/*"}`, "", "ec2:DescribeFlowLogs", "*", nil, ImplicitDeny},
		// "IAM JSON policy elements: NotResource".
		{"NotResource", `{"Effect":"Allow","Action":"logs:*","NotResource":"arn:aws:logs:*:*:log-group:secret*"}`, "", "logs:PutLogEvents", lg, nil, Allowed},
		{"NotResource excludes", `{"Effect":"Allow","Action":"logs:*","NotResource":"arn:aws:logs:*:*:log-group:vpc*"}`, "", "logs:PutLogEvents", lg, nil, ImplicitDeny},
		// "IAM policy elements: Variables and tags": ${aws:username} in Resource (Version 2012-10-17 only).
		{"policy variable", `{"Effect":"Allow","Action":"iam:CreateAccessKey","Resource":"arn:aws:iam::*:user/${aws:username}"}`, "", "iam:CreateAccessKey", "arn:aws:iam::123456789012:user/alice", ctx("aws:username", "alice"), Allowed},
		{"policy variable other user", `{"Effect":"Allow","Action":"iam:CreateAccessKey","Resource":"arn:aws:iam::*:user/${aws:username}"}`, "", "iam:CreateAccessKey", "arn:aws:iam::123456789012:user/bob", ctx("aws:username", "alice"), ImplicitDeny},
		{"policy variable missing key", `{"Effect":"Allow","Action":"iam:CreateAccessKey","Resource":"arn:aws:iam::*:user/${aws:username}"}`, "", "iam:CreateAccessKey", "arn:aws:iam::123456789012:user/alice", ctx(), ImplicitDeny},
		// "IAM JSON policy elements: Condition operators".
		{"StringEquals match", `{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:username":"alice"}}}`, "", "ec2:CreateFlowLogs", "*", ctx("aws:username", "alice"), Allowed},
		{"StringEquals is case-sensitive", `{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:username":"Alice"}}}`, "", "ec2:CreateFlowLogs", "*", ctx("aws:username", "alice"), ImplicitDeny},
		{"condition keys are case-insensitive", `{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"AWS:UserName":"alice"}}}`, "", "ec2:CreateFlowLogs", "*", ctx("aws:username", "alice"), Allowed},
		// "Creating a condition with multiple context keys or values": values of one key are ORed.
		{"values ORed", `{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:RequestedRegion":["eu-west-1","us-east-1"]}}}`, "", "ec2:CreateFlowLogs", "*", ctx("aws:RequestedRegion", "us-east-1"), Allowed},
		// ... and keys/operators ANDed.
		{"keys ANDed", `{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:RequestedRegion":"us-east-1","aws:username":"bob"}}}`, "", "ec2:CreateFlowLogs", "*", ctx("aws:RequestedRegion", "us-east-1", "aws:username", "alice"), ImplicitDeny},
		// Negated operators with several values: the key must match none of them (NOR).
		{"StringNotEquals NOR", `{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringNotEquals":{"aws:RequestedRegion":["eu-west-1","us-east-1"]}}},{"Effect":"Allow","Action":"*","Resource":"*"}`, "", "ec2:CreateFlowLogs", "*", ctx("aws:RequestedRegion", "us-east-1"), Allowed},
		{"StringNotEquals denies other region", `{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringNotEquals":{"aws:RequestedRegion":["eu-west-1","us-east-1"]}}},{"Effect":"Allow","Action":"*","Resource":"*"}`, "", "ec2:CreateFlowLogs", "*", ctx("aws:RequestedRegion", "ap-south-1"), ExplicitDeny},
		{"StringLike", `{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/agent-*"}}}`, "", "ec2:CreateFlowLogs", "*", ctx("aws:PrincipalArn", "arn:aws:iam::123456789012:user/agent-7"), Allowed},
		{"StringNotLike", `{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringNotLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/agent-*"}}}`, "", "ec2:CreateFlowLogs", "*", ctx("aws:PrincipalArn", "arn:aws:iam::123456789012:user/agent-7"), ImplicitDeny},
		{"IpAddress in range", `{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","192.0.2.1"]}}}`, "", "ec2:CreateFlowLogs", "*", ctx("aws:SourceIp", "10.1.2.3"), Allowed},
		{"IpAddress single address", `{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"192.0.2.1"}}}`, "", "ec2:CreateFlowLogs", "*", ctx("aws:SourceIp", "192.0.2.2"), ImplicitDeny},
		{"IpAddress IPv6", `{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"2001:db8::/32"}}}`, "", "ec2:CreateFlowLogs", "*", ctx("aws:SourceIp", "2001:db8::1"), Allowed},
		// The classic "deny unless from the office network" policy.
		{"NotIpAddress deny", `{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":"192.0.2.0/24"}}}`, "", "ec2:CreateFlowLogs", "*", ctx("aws:SourceIp", "198.51.100.7"), ExplicitDeny},
		{"NotIpAddress in range", `{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":"192.0.2.0/24"}}}`, "", "ec2:CreateFlowLogs", "*", ctx("aws:SourceIp", "192.0.2.9"), Allowed},
		// "aws:SecureTransport": deny plain HTTP.
		{"Bool SecureTransport false denies", `{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}`, "", "ec2:CreateFlowLogs", "*", ctx("aws:SecureTransport", "false"), ExplicitDeny},
		{"Bool SecureTransport true", `{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":false}}}`, "", "ec2:CreateFlowLogs", "*", ctx("aws:SecureTransport", "true"), Allowed},
		// "Condition operators": a missing key fails a positive operator ...
		{"missing key fails positive", `{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:username":"alice"}}}`, "", "ec2:CreateFlowLogs", "*", ctx(), ImplicitDeny},
		// ... satisfies a negated one ...
		{"missing key satisfies negated", `{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringNotEquals":{"aws:username":"alice"}}}`, "", "ec2:CreateFlowLogs", "*", ctx(), Allowed},
		// ... and "...IfExists": a missing key satisfies it.
		{"IfExists missing key", `{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEqualsIfExists":{"aws:username":"alice"}}}`, "", "ec2:CreateFlowLogs", "*", ctx(), Allowed},
		{"IfExists present key", `{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEqualsIfExists":{"aws:username":"alice"}}}`, "", "ec2:CreateFlowLogs", "*", ctx("aws:username", "bob"), ImplicitDeny},
		// "Condition operator to check existence of condition keys" (Null).
		{"Null true: key absent", `{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Null":{"aws:username":"true"}}}`, "", "ec2:CreateFlowLogs", "*", ctx(), Allowed},
		{"Null false: key present", `{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Null":{"aws:username":"false"}}}`, "", "ec2:CreateFlowLogs", "*", ctx(), ImplicitDeny},
		// "Multivalued context keys": ForAnyValue / ForAllValues.
		{"ForAnyValue", `{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"ForAnyValue:StringEquals":{"aws:TagKeys":["env","team"]}}}`, "", "ec2:CreateFlowLogs", "*", Context{"aws:tagkeys": {"owner", "team"}}, Allowed},
		{"ForAllValues", `{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["env","team"]}}}`, "", "ec2:CreateFlowLogs", "*", Context{"aws:tagkeys": {"owner", "team"}}, ImplicitDeny},
		{"ForAllValues missing key", `{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["env"]}}}`, "", "ec2:CreateFlowLogs", "*", ctx(), Allowed},
		{"ArnLike", `{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::123456789012:role/flowlogs-*"}}}`, "", "ec2:CreateFlowLogs", "*", ctx("aws:PrincipalArn", "arn:aws:iam::123456789012:role/flowlogs-role"), Allowed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pols := []Policy{{Name: "p1", Doc: mustParse(t, `{"Version":"2012-10-17","Statement":[`+c.doc+`]}`, Identity)}}
			if c.extra != "" {
				pols = append(pols, Policy{Name: "p2", Doc: mustParse(t, `{"Version":"2012-10-17","Statement":[`+c.extra+`]}`, Identity)})
			}
			cx := c.ctx
			if cx == nil {
				cx = Context{}
			}
			got := Evaluate(pols, Request{Action: c.action, Resource: c.resource, Context: cx})
			if got.Decision != c.want {
				t.Fatalf("decision = %v, want %v (matches %+v)", got.Decision, c.want, got.Matches)
			}
			m, ok := got.Deciding()
			if ok != (c.want != ImplicitDeny) {
				t.Fatalf("deciding statement present = %v for %v", ok, c.want)
			}
			if ok && ((c.want == ExplicitDeny) != (m.Effect == Deny)) {
				t.Fatalf("deciding statement %+v for %v", m, c.want)
			}
		})
	}
}

func TestEvaluateVersion2008HasNoVariables(t *testing.T) {
	// "IAM policy elements: Version": variables are literal text under 2008-10-17.
	d := mustParse(t, `{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"iam:*","Resource":"arn:aws:iam::*:user/${aws:username}"}}`, Identity)
	r := Evaluate([]Policy{{Doc: d}}, Request{Action: "iam:GetUser", Resource: "arn:aws:iam::1:user/alice", Context: ctx("aws:username", "alice")})
	if r.Decision != ImplicitDeny {
		t.Fatalf("decision %v", r.Decision)
	}
}

func TestTrustPolicy(t *testing.T) {
	trust := func(principal string) *Document {
		return mustParse(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":`+principal+`,"Action":"sts:AssumeRole"}]}`, Trust)
	}
	req := Request{Action: "sts:AssumeRole", Resource: "arn:aws:iam::123456789012:role/r", PrincipalType: "Service", PrincipalID: "vpc-flow-logs.amazonaws.com", Context: Context{}}
	cases := []struct {
		principal string
		want      Decision
	}{
		{`{"Service":"vpc-flow-logs.amazonaws.com"}`, Allowed},
		{`{"Service":["ec2.amazonaws.com","vpc-flow-logs.amazonaws.com"]}`, Allowed},
		{`{"Service":"ec2.amazonaws.com"}`, ImplicitDeny},
		{`{"AWS":"arn:aws:iam::123456789012:root"}`, ImplicitDeny},
		{`"*"`, Allowed},
	}
	for _, c := range cases {
		if got := Evaluate([]Policy{{Doc: trust(c.principal)}}, req).Decision; got != c.want {
			t.Errorf("principal %s: %v, want %v", c.principal, got, c.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		doc  string
		kind Kind
		want string
	}{
		{`{`, Identity, "This policy contains invalid Json"},
		{`{"Version":"2012-10-17","Statement":[]}`, Identity, "Syntax errors in policy."},
		{`{"Version":"2012-10-17"}`, Identity, "Syntax errors in policy."},
		{`{"Version":"2012-10-18","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`, Identity, "The policy failed legacy parsing"},
		{`{"Version":"2012-10-17","Statement":{"Effect":"Permit","Action":"*","Resource":"*"}}`, Identity, "Syntax errors in policy."},
		{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Resource":"*"}}`, Identity, "Policy statement must contain actions."},
		{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*"}}`, Identity, "Policy statement must contain resources."},
		{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"CreateFlowLogs","Resource":"*"}}`, Identity, "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."},
		{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"vpc-1"}}`, Identity, `Resource vpc-1 must be in ARN format or "*".`},
		{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}}`, Identity, "Policy document should not specify a principal."},
		{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sts:AssumeRole"}}`, Trust, "Missing required field Principal"},
		{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Service":"x"},"Action":"sts:AssumeRole","Resource":"*"}}`, Trust, "Has prohibited field Resource"},
		{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringSorta":{"aws:username":"x"}}}}`, Identity, "Invalid Condition type : StringSorta"},
		{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.300"}}}}`, Identity, "Invalid IP address or CIDR in condition IpAddress: 10.0.0.300"},
		{`{"Version":"2012-10-17","Statement":[{"Sid":"a","Effect":"Allow","Action":"*","Resource":"*"},{"Sid":"a","Effect":"Allow","Action":"*","Resource":"*"}]}`, Identity, "Statement IDs (SID) in a single policy must be unique."},
		{`{"Version":"2012-10-17","Statment":{"Effect":"Allow","Action":"*","Resource":"*"}}`, Identity, "Syntax errors in policy."},
	}
	for _, c := range cases {
		_, err := Parse(c.doc, c.kind)
		var me *MalformedError
		if !errors.As(err, &me) || me.Message != c.want {
			t.Errorf("Parse(%s) = %v, want %q", c.doc, err, c.want)
		}
	}
}

func TestGlob(t *testing.T) {
	cases := []struct {
		p, s string
		want bool
	}{
		{"*", "", true}, {"a*", "a", true}, {"a*c", "abbbc", true}, {"a*c", "abbbd", false},
		{"?", "é", true}, {"a?c", "ac", false}, {"*a*a*a*a*b", strings.Repeat("a", 200), false},
	}
	for _, c := range cases {
		if got := Glob(c.p, c.s); got != c.want {
			t.Errorf("Glob(%q, %q) = %v", c.p, c.s, got)
		}
	}
}

// FuzzParse: any input either parses or is a MalformedError; a parsed
// document evaluates without panicking.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`,
		`{"Version":"2012-10-17","Statement":[{"Sid":"A1","Effect":"Deny","NotAction":["logs:*","ec2:?escribe*"],"NotResource":"arn:aws:logs:*:*:log-group:${aws:username}*","Condition":{"ForAnyValue:StringLikeIfExists":{"aws:TagKeys":["a*",1,true]},"NotIpAddress":{"aws:SourceIp":["10.0.0.0/8","::1"]},"Null":{"aws:username":"true"}}}]}`,
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Service":["vpc-flow-logs.amazonaws.com"],"AWS":"123456789012"},"Action":"sts:AssumeRole"}}`,
		`{"Statement":{"Effect":"Allow","NotPrincipal":"*","Action":"sts:*"}}`,
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, doc string, trust bool) {
		kind := Identity
		if trust {
			kind = Trust
		}
		d, err := Parse(doc, kind)
		if err != nil {
			var me *MalformedError
			if !errors.As(err, &me) || me.Message == "" {
				t.Fatalf("error %v is not a MalformedError", err)
			}
			return
		}
		r := Evaluate([]Policy{{Doc: d}}, Request{Action: "ec2:CreateFlowLogs", Resource: "arn:aws:ec2:us-east-1:123456789012:vpc-flow-log/fl-1",
			PrincipalType: "Service", PrincipalID: "vpc-flow-logs.amazonaws.com",
			Context: Context{"aws:sourceip": {"10.1.2.3"}, "aws:username": {"alice"}, "aws:tagkeys": {"a", "b"}}})
		if r.Decision == ImplicitDeny && len(r.Matches) != 0 {
			t.Fatalf("implicit deny with matches %+v", r.Matches)
		}
	})
}
