package ec2_test

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/ec2"
)

// denyRole records every authorization question and refuses the one role
// given, as an IAM policy without iam:PassRole on it would.
type denyRole struct {
	role string
	mu   sync.Mutex
	asks []string
}

func (d *denyRole) Authorize(_ context.Context, r api.Request) error {
	d.mu.Lock()
	d.asks = append(d.asks, r.Action+" "+strings.Join(r.Resources, ","))
	d.mu.Unlock()
	if r.Action == "iam:PassRole" && slices.Contains(r.Resources, d.role) {
		return api.AccessDenied(r.Call.Service, r.Call.Principal, r.Action, r.Resources)
	}
	return nil
}

func (d *denyRole) take() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	a := d.asks
	d.asks = nil
	return a
}

// Calls are authorized on the resources they act on: the VPC, subnet or
// interface ARNs of a create, iam:PassRole on its role, the flow log
// ARNs of a delete or describe by id.
func TestAuthorizationResources(t *testing.T) {
	authz := &denyRole{role: "arn:aws:iam::123456789012:role/denied"}
	e := startAuthz(t, ec2.Options{}, authz)
	e.register(t, registration("a1", "vpc-0a1b2c3d", 1))
	sg := newSigner(e.srv.URL)
	ctx := context.Background()
	var out xmlCreate
	p := url.Values{"ResourceType": {"Subnet"}, "ResourceId.1": {"subnet-a1a"}, "ResourceId.2": {"subnet-a1b"}, "TrafficType": {"ALL"},
		"LogGroupName": {"g"}, "DeliverLogsPermissionArn": {"arn:aws:iam::123456789012:role/ok"}}
	if err := sg.query(ctx, "CreateFlowLogs", p, &out); err != nil || len(out.FlowLogIDs) != 2 {
		t.Fatal(out, err)
	}
	subnets := "arn:aws:ec2:us-east-1:123456789012:subnet/subnet-a1a,arn:aws:ec2:us-east-1:123456789012:subnet/subnet-a1b"
	if got := authz.take(); !slices.Contains(got, "ec2:CreateFlowLogs "+subnets) || !slices.Contains(got, "iam:PassRole arn:aws:iam::123456789012:role/ok") {
		t.Fatalf("create asked %v", got)
	}
	// PassRole refused: UnauthorizedOperation (HTTP 403), nothing created.
	p.Set("DeliverLogsPermissionArn", "arn:aws:iam::123456789012:role/denied")
	p.Set("LogGroupName", "other")
	stderr := e.cliFail(t, "ec2", "create-flow-logs", "--resource-type", "Subnet", "--resource-ids", "subnet-a1a", "--traffic-type", "REJECT",
		"--log-group-name", "other", "--deliver-logs-permission-arn", "arn:aws:iam::123456789012:role/denied")
	if !strings.Contains(stderr, "(UnauthorizedOperation)") || !strings.Contains(stderr, "iam:PassRole") {
		t.Fatalf("denied role: %q", stderr)
	}
	authz.take()
	var d xmlDescribe
	if err := sg.query(ctx, "DescribeFlowLogs", url.Values{"FlowLogId.1": {out.FlowLogIDs[0]}}, &d); err != nil || len(d.FlowLogs) != 1 {
		t.Fatal(d, err)
	}
	if got := authz.take(); !slices.Equal(got, []string{"ec2:DescribeFlowLogs arn:aws:ec2:us-east-1:123456789012:vpc-flow-log/" + out.FlowLogIDs[0]}) {
		t.Fatalf("describe asked %v", got)
	}
	var del xmlCreate
	if err := sg.query(ctx, "DeleteFlowLogs", url.Values{"FlowLogId.1": {out.FlowLogIDs[1]}}, &del); err != nil || len(del.Unsuccessful) != 0 {
		t.Fatal(del, err)
	}
	if got := authz.take(); !slices.Contains(got, "ec2:DeleteFlowLogs arn:aws:ec2:us-east-1:123456789012:vpc-flow-log/"+out.FlowLogIDs[1]) {
		t.Fatalf("delete asked %v", got)
	}
	if err := sg.query(ctx, "DescribeVpcs", url.Values{}, &struct{}{}); err != nil {
		t.Fatal(err)
	}
	if got := authz.take(); !slices.Equal(got, []string{"ec2:DescribeVpcs *"}) {
		t.Fatalf("describe-vpcs asked %v", got)
	}
}
