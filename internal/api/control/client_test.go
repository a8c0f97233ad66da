package control_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/apitest"
	"github.com/flowlog/flowlog/internal/api/control"
	"github.com/flowlog/flowlog/internal/api/ec2"
)

// startServer runs the real server side of the protocol (control.Service
// over the EC2 service's store) and the EC2 API on loopback.
func startServer(t *testing.T) *apitest.Server {
	t.Helper()
	ctx := context.Background()
	db, err := api.OpenDB(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc, err := ec2.New(ctx, db, ec2.Options{AccountID: apitest.AccountID, Region: apitest.Region})
	if err != nil {
		t.Fatal(err)
	}
	return apitest.Start(t, api.Options{Services: []api.Service{svc, control.NewService(svc, control.ServiceOptions{PollWait: 5 * time.Second})}})
}

func newClient(t *testing.T, url, secret string) *control.Client {
	t.Helper()
	c, err := control.NewClient(control.ClientConfig{URL: url, AccessKeyID: apitest.AccessKey, SecretAccessKey: secret, Region: apitest.Region})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var registration = control.Registration{
	AgentID: "i-0123456789abcdef0", Hostname: "host-a", Version: "test", AccountID: apitest.AccountID, Region: apitest.Region,
	InstanceID: "i-0123456789abcdef0",
	VPCs:       []control.VPC{{VPCID: "vpc-0123456789abcdef0", CIDRBlocks: []string{"10.1.0.0/16"}}},
	Subnets:    []control.Subnet{{SubnetID: "subnet-0123456789abcdef0", VPCID: "vpc-0123456789abcdef0", CIDRBlocks: []string{"10.1.2.0/24"}}},
	Interfaces: []control.Interface{{
		InterfaceID: "eni-0123456789abcdef0", SubnetID: "subnet-0123456789abcdef0", VPCID: "vpc-0123456789abcdef0",
		InstanceID: "i-0123456789abcdef0", MAC: "02:00:00:00:00:01", Addresses: []string{"10.1.2.3"}, Name: "eth0",
	}},
}

// TestClientFollowsTheServer: the client's signed calls register, watch
// (at once for a new revision, held until a flow log is created, held for
// the wait when nothing changes) and report status, which describe-flow-logs
// then shows.
func TestClientFollowsTheServer(t *testing.T) {
	srv := startServer(t)
	c := newClient(t, srv.URL, apitest.SecretKey)
	ctx := context.Background()
	res, err := c.Register(ctx, registration)
	if err != nil {
		t.Fatal(err)
	}
	if res.PollWait != 5*time.Second {
		t.Errorf("poll wait %s, want the server's 5s", res.PollWait)
	}
	set, err := c.Watch(ctx, control.WatchRequest{AgentID: registration.AgentID})
	if err != nil {
		t.Fatal(err)
	}
	if set.Revision == 0 || len(set.FlowLogs) != 0 {
		t.Fatalf("first watch: %+v", set)
	}

	// Nothing changes: held for the wait asked for.
	start := time.Now()
	again, err := c.Watch(ctx, control.WatchRequest{AgentID: registration.AgentID, Revision: set.Revision, Wait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 4*time.Second || again.Revision != set.Revision {
		t.Fatalf("unchanged watch answered after %s with revision %d (had %d)", d, again.Revision, set.Revision)
	}

	// A flow log created while the watch is held ends it.
	type answer struct {
		set control.FlowLogSet
		err error
		at  time.Time
	}
	got := make(chan answer, 1)
	go func() {
		s, err := c.Watch(ctx, control.WatchRequest{AgentID: registration.AgentID, Revision: set.Revision, Wait: 5 * time.Second})
		got <- answer{s, err, time.Now()}
	}()
	time.Sleep(300 * time.Millisecond)
	var created struct{ FlowLogIds []string }
	srv.NewCLI().JSON(t, &created, "ec2", "create-flow-logs", "--resource-type", "Subnet", "--resource-ids", "subnet-0123456789abcdef0",
		"--traffic-type", "REJECT", "--log-destination-type", "file", "--log-destination", "/var/log/flowlogs",
		"--max-aggregation-interval", "60")
	createdAt := time.Now()
	a := <-got
	if a.err != nil {
		t.Fatal(a.err)
	}
	if len(created.FlowLogIds) != 1 || len(a.set.FlowLogs) != 1 {
		t.Fatalf("created %v, watch answered %+v", created.FlowLogIds, a.set)
	}
	fl := a.set.FlowLogs[0]
	if fl.FlowLogID != created.FlowLogIds[0] || fl.ResourceID != "subnet-0123456789abcdef0" || fl.TrafficType != "REJECT" ||
		fl.LogDestinationType != "file" || fl.LogDestination != "/var/log/flowlogs" || fl.MaxAggregationInterval != 60 {
		t.Errorf("flow log %+v", fl)
	}
	t.Logf("watch answered %s after create-flow-logs returned", a.at.Sub(createdAt).Round(time.Millisecond))

	// Status flows back to describe-flow-logs.
	err = c.ReportStatus(ctx, control.StatusReport{AgentID: registration.AgentID, FlowLogs: []control.FlowLogStatus{{
		FlowLogID: fl.FlowLogID, Status: "FAILED", Message: "destination /var/log/flowlogs: permission denied", Records: 3,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	var described struct {
		FlowLogs []struct {
			FlowLogId, DeliverLogsStatus, DeliverLogsErrorMessage string
		}
	}
	srv.NewCLI().JSON(t, &described, "ec2", "describe-flow-logs", "--flow-log-ids", fl.FlowLogID)
	if len(described.FlowLogs) != 1 || described.FlowLogs[0].DeliverLogsStatus != "FAILED" ||
		!strings.Contains(described.FlowLogs[0].DeliverLogsErrorMessage, "permission denied") {
		t.Fatalf("describe-flow-logs after a FAILED report: %+v", described)
	}
}

// TestClientErrors: the server's refusals come back typed, naming the
// operation and the server's code.
func TestClientErrors(t *testing.T) {
	srv := startServer(t)
	ctx := context.Background()

	_, err := newClient(t, srv.URL, "not-the-secret-of-this-access-key").Register(ctx, registration)
	var ce *control.Error
	if !errors.As(err, &ce) || ce.Op != control.OpRegister || ce.Code != "SignatureDoesNotMatch" || !ce.IsAuth() {
		t.Fatalf("wrong secret: %v", err)
	}

	c := newClient(t, srv.URL, apitest.SecretKey)
	_, err = c.Watch(ctx, control.WatchRequest{})
	if !errors.As(err, &ce) || ce.Op != control.OpWatchFlowLogs || ce.Code != "MissingParameter" || ce.IsAuth() || ce.Status != http.StatusBadRequest {
		t.Fatalf("watch without agent id: %v", err)
	}
	if !strings.Contains(err.Error(), "control WatchFlowLogs: MissingParameter: ") {
		t.Errorf("message %q", err)
	}
	err = c.ReportStatus(ctx, control.StatusReport{AgentID: "a", FlowLogs: []control.FlowLogStatus{{FlowLogID: "fl-1", Status: "BROKEN"}}})
	if !errors.As(err, &ce) || ce.Code != "InvalidParameterValue" {
		t.Fatalf("bad status: %v", err)
	}

	// Something that is not a flowlog server (a proxy's error page).
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "<html>upstream unavailable</html>", http.StatusBadGateway)
	}))
	defer proxy.Close()
	_, err = newClient(t, proxy.URL, apitest.SecretKey).Register(ctx, registration)
	if !errors.As(err, &ce) || ce.Status != http.StatusBadGateway || ce.Code != "Bad Gateway" || !strings.Contains(ce.Message, "upstream unavailable") {
		t.Fatalf("proxy error: %v", err)
	}

	// Nobody listening.
	proxy.Close()
	if _, err := newClient(t, proxy.URL, apitest.SecretKey).Register(ctx, registration); err == nil || errors.As(err, &ce) || !strings.Contains(err.Error(), "control Register: ") {
		t.Fatalf("no server: %v", err)
	}
}

func TestClientConfigValidate(t *testing.T) {
	for _, c := range []control.ClientConfig{
		{URL: "", AccessKeyID: "A", SecretAccessKey: "S"},
		{URL: "ftp://h:1", AccessKeyID: "A", SecretAccessKey: "S"},
		{URL: "http://h:1", SecretAccessKey: "S"},
		{URL: "http://h:1", AccessKeyID: "A"},
	} {
		if _, err := control.NewClient(c); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}
