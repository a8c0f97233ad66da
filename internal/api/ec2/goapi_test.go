package ec2_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/control"
	"github.com/flowlog/flowlog/internal/api/ec2"
)

// The Go API (console, agents) validates as the Query API does and
// answers the same *api.Error codes; the server-wide limit is enforced
// per resource in Unsuccessful; Changed is closed on every change.
func TestGoAPI(t *testing.T) {
	e := start(t, ec2.Options{MaxFlowLogs: 3})
	e.register(t, registration("a1", "vpc-0a1b2c3d", 5))
	ctx := context.Background()
	code := func(err error) string {
		var ae *api.Error
		if errors.As(err, &ae) {
			return ae.Code
		}
		return "not an *api.Error: " + err.Error()
	}
	in := ec2.CreateFlowLogsInput{ResourceType: "NetworkInterface", ResourceIDs: []string{"eni-a10000"}, TrafficType: "ALL",
		LogDestinationType: "file", LogDestination: "/var/log/flows", LogFormat: "${srcaddr} ${nope}"}
	if _, err := e.svc.CreateFlowLogs(ctx, nil, in); code(err) != "InvalidParameter" {
		t.Fatalf("bad format: %v", err)
	}
	in.LogFormat = ""
	in.DryRun = true
	if _, err := e.svc.CreateFlowLogs(ctx, nil, in); code(err) != "DryRunOperation" || err.(*api.Error).Status != 412 {
		t.Fatalf("dry run: %v", err)
	}
	in.DryRun = false
	changed := e.svc.Changed()
	in.ResourceIDs = []string{"eni-a10000", "eni-a10001", "eni-a10002", "eni-a10003", "eni-a10004"}
	out, err := e.svc.CreateFlowLogs(ctx, nil, in)
	if err != nil || len(out.FlowLogIDs) != 3 || len(out.Unsuccessful) != 2 || out.Unsuccessful[0].Code != "FlowLogsLimitExceeded" ||
		out.Unsuccessful[0].ResourceID != "eni-a10003" {
		t.Fatalf("over the server limit: %+v, %v", out, err)
	}
	select {
	case <-changed:
	case <-time.After(time.Second):
		t.Fatal("Changed not closed by a create")
	}
	changed = e.svc.Changed()
	if us, err := e.svc.DeleteFlowLogs(ctx, nil, out.FlowLogIDs[:1]); err != nil || len(us) != 0 {
		t.Fatal(us, err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("Changed not closed by a delete")
	}
	if _, err := e.svc.DeleteFlowLogs(ctx, nil, nil); code(err) != "MissingParameter" {
		t.Fatalf("delete nothing: %v", err)
	}
	if _, err := e.svc.DescribeFlowLogs(ctx, ec2.DescribeFlowLogsInput{MaxResults: 2}); code(err) != "InvalidParameterValue" {
		t.Fatalf("MaxResults 2: %v", err)
	}
	if _, err := e.svc.DescribeFlowLogs(ctx, ec2.DescribeFlowLogsInput{Filters: []ec2.Filter{{Name: "bogus", Values: []string{"x"}}}}); code(err) != "InvalidParameterValue" {
		t.Fatalf("bogus filter: %v", err)
	}
}

// A FAILED report counts while it is renewed; one from an agent that
// stopped reporting expires after StatusTTL.
func TestFailedStatusExpires(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := start(t, ec2.Options{Now: clock})
	e.register(t, registration("a1", "vpc-0a1b2c3d", 1))
	ctx := context.Background()
	out, err := e.svc.CreateFlowLogs(ctx, nil, ec2.CreateFlowLogsInput{ResourceType: "VPC", ResourceIDs: []string{"vpc-0a1b2c3d"}, TrafficType: "ALL",
		LogDestinationType: "kafka", LogDestination: "kafka://127.0.0.1:9/flows"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.ReportStatus(ctx, control.StatusReport{AgentID: "a1", FlowLogs: []control.FlowLogStatus{{FlowLogID: out.FlowLogIDs[0], Status: "FAILED", Message: "dial tcp 127.0.0.1:9: connection refused"}}}); err != nil {
		t.Fatal(err)
	}
	status := func() string {
		d, err := e.svc.DescribeFlowLogs(ctx, ec2.DescribeFlowLogsInput{FlowLogIDs: out.FlowLogIDs})
		if err != nil || len(d.FlowLogs) != 1 {
			t.Fatal(d, err)
		}
		return d.FlowLogs[0].DeliverLogsStatus + " " + d.FlowLogs[0].DeliverLogsErrorMessage
	}
	if s := status(); s != "FAILED dial tcp 127.0.0.1:9: connection refused" {
		t.Fatalf("fresh report: %q", s)
	}
	mu.Lock()
	now = now.Add(ec2.StatusTTL + time.Second)
	mu.Unlock()
	if s := status(); s != "SUCCESS " {
		t.Fatalf("expired report: %q", s)
	}
}

// A ClientToken is remembered for ClientTokenTTL, then forgotten.
func TestClientTokenExpires(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := start(t, ec2.Options{Now: clock})
	e.register(t, registration("a1", "vpc-0a1b2c3d", 1))
	ctx := context.Background()
	in := ec2.CreateFlowLogsInput{ResourceType: "VPC", ResourceIDs: []string{"vpc-0a1b2c3d"}, TrafficType: "ALL",
		LogDestinationType: "file", LogDestination: "/var/log/flows", ClientToken: "t1"}
	first, err := e.svc.CreateFlowLogs(ctx, nil, in)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(ec2.ClientTokenTTL - time.Minute)
	mu.Unlock()
	if again, err := e.svc.CreateFlowLogs(ctx, nil, in); err != nil || again.FlowLogIDs[0] != first.FlowLogIDs[0] {
		t.Fatalf("retry within the TTL: %+v, %v", again, err)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	// Expired: the token is new again, and the flow log exists already.
	late, err := e.svc.CreateFlowLogs(ctx, nil, in)
	if err != nil || len(late.Unsuccessful) != 1 || late.Unsuccessful[0].Code != "FlowLogAlreadyExists" {
		t.Fatalf("retry after the TTL: %+v, %v", late, err)
	}
}
