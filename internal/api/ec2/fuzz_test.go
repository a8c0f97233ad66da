package ec2

import (
	"context"
	"errors"
	"net/url"
	"testing"

	"github.com/flowlog/flowlog/internal/api"
)

// FuzzCreateFlowLogsParams feeds arbitrary form bodies to the Query
// decoding and validation of CreateFlowLogs and DescribeFlowLogs: they
// must never panic, and every refusal must be an *api.Error (a client
// error with an AWS code, never an internal error).
func FuzzCreateFlowLogsParams(f *testing.F) {
	for _, seed := range []string{
		"Action=CreateFlowLogs&ResourceType=VPC&ResourceId.1=vpc-1&TrafficType=ALL&LogDestinationType=s3&LogDestination=arn:aws:s3:::bucket/p",
		"ResourceType=NetworkInterface&ResourceId.1=eni-1&ResourceId.2=eni-2&TrafficType=REJECT&LogDestinationType=file&LogDestination=/var/log&LogFormat=%24%7Bsrcaddr%7D",
		"ResourceType=Subnet&ResourceId.3=subnet-1&TrafficType=ACCEPT&LogGroupName=g&DeliverLogsPermissionArn=arn:aws:iam::1:role/r&MaxAggregationInterval=60",
		"TagSpecification.1.ResourceType=vpc-flow-log&TagSpecification.1.Tag.1.Key=k&TagSpecification.1.Tag.1.Value=v&DestinationOptions.FileFormat=parquet",
		"Filter.1.Name=tag:k&Filter.1.Value.1=v*&Filter.2.Name=resource-id&Filter.2.Value.1=?&MaxResults=5&NextToken=djE6MTA",
		"ResourceId.01=x&ResourceId.99999999999=y&Filter.0.Name=&DryRun=maybe&MaxResults=-1",
		"LogDestinationType=kafka&LogDestination=kafka://h:1/t&ClientToken=abc",
	} {
		f.Add(seed)
	}
	s := &Service{opts: Options{AccountID: "123456789012", Region: "us-east-1", MaxFlowLogs: 10, MaxFlowLogsPerResource: 2}}
	f.Fuzz(func(t *testing.T, body string) {
		q, err := url.ParseQuery(body)
		if err != nil {
			return // the router refuses a malformed body before any service
		}
		isAPI := func(where string, err error) {
			var e *api.Error
			if err != nil && (!errors.As(err, &e) || e.Status >= 500 || e.Code == "") {
				t.Fatalf("%s: %T %v is not a client *api.Error", where, err, err)
			}
		}
		p := params(q)
		in, err := parseCreate(p)
		isAPI("parseCreate", err)
		if err == nil {
			_, err = s.validate(in)
			isAPI("validate", err)
		}
		_, err = p.filters()
		isAPI("filters", err)
		_, _, err = pageParams(p)
		isAPI("pageParams", err)
		_, err = s.Resources(context.Background(), &api.Call{Action: "CreateFlowLogs", Params: q})
		isAPI("Resources", err)
		if tok := p.str("NextToken"); tok != "" {
			_, err = decodeToken(tok)
			isAPI("decodeToken", err)
		}
		for _, flt := range mustFilters(p) {
			for _, v := range flt.Values {
				_ = match(v, flt.Name) // must not panic on any pattern
			}
		}
	})
}

func mustFilters(p params) []Filter {
	f, _ := p.filters()
	return f
}

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		p, s string
		want bool
	}{
		{"eni-*", "eni-123", true}, {"eni-?23", "eni-123", true}, {"eni-?", "eni-12", false}, {"*", "", true},
		{"a*b*c", "axxbyyc", true}, {"a*b*c", "axxbyy", false}, {`a\*`, "a*", true}, {`a\*`, "ab", false},
		{"", "", true}, {"", "x", false}, {"**", "abc", true}, {"ENI-*", "eni-1", false},
	} {
		if got := match(c.p, c.s); got != c.want {
			t.Errorf("match(%q, %q) = %v", c.p, c.s, got)
		}
	}
}
