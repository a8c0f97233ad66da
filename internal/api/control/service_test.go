package control_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/apitest"
	"github.com/flowlog/flowlog/internal/api/control"
	"github.com/flowlog/flowlog/internal/api/ec2"
)

// recorder allows everything and remembers what was asked.
type recorder struct {
	mu   sync.Mutex
	asks []string
}

func (r *recorder) Authorize(_ context.Context, req api.Request) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asks = append(r.asks, req.Action+" "+fmt.Sprint(req.Resources))
	return nil
}

type env struct {
	fl    *ec2.Service
	url   string
	authz *recorder
}

func start(t *testing.T, pollWait time.Duration) *env {
	t.Helper()
	ctx := context.Background()
	db, err := api.OpenDB(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	fl, err := ec2.New(ctx, db, ec2.Options{AccountID: apitest.AccountID, Region: apitest.Region})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	srv := apitest.Start(t, api.Options{Authorizer: rec, Services: []api.Service{fl, control.NewService(fl, control.ServiceOptions{PollWait: pollWait})}})
	return &env{fl: fl, url: srv.URL, authz: rec}
}

// call sends a signed agent protocol request.
func (e *env) call(ctx context.Context, op string, in, out any) error {
	body, _ := json.Marshal(in)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.url+control.PathPrefix+op, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: apitest.AccessKey, SecretAccessKey: apitest.SecretKey}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), control.SigningName, apitest.Region, time.Now()); err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d: %s", op, resp.StatusCode, b)
	}
	return json.Unmarshal(b, out)
}

func reg(agent, vpc, subnet, eni string) control.Registration {
	return control.Registration{AgentID: agent, InstanceID: "i-" + agent,
		VPCs:       []control.VPC{{VPCID: vpc, CIDRBlocks: []string{"10.0.0.0/16"}}},
		Subnets:    []control.Subnet{{SubnetID: subnet, VPCID: vpc, CIDRBlocks: []string{"10.0.1.0/24"}}},
		Interfaces: []control.Interface{{InterfaceID: eni, SubnetID: subnet, VPCID: vpc, MAC: "02:00:00:00:00:01", Addresses: []string{"10.0.1.5"}, Name: "eth0"}},
	}
}

func create(t *testing.T, fl *ec2.Service, rt, id, traffic string) string {
	t.Helper()
	out, err := fl.CreateFlowLogs(context.Background(), nil, ec2.CreateFlowLogsInput{ResourceType: rt, ResourceIDs: []string{id}, TrafficType: traffic,
		LogDestinationType: "file", LogDestination: "/var/log/flows"})
	if err != nil || len(out.FlowLogIDs) != 1 {
		t.Fatalf("create on %s: %+v, %v", id, out, err)
	}
	return out.FlowLogIDs[0]
}

// An agent gets the flow logs of its VPCs, subnets and interfaces, and
// no other agent's; every call is authorized as flowlog:Operation.
func TestAgentGetsOnlyItsFlowLogs(t *testing.T) {
	e := start(t, 5*time.Second)
	ctx := context.Background()
	var rr control.RegisterResult
	for _, r := range []control.Registration{reg("a", "vpc-a", "subnet-a", "eni-a"), reg("b", "vpc-b", "subnet-b", "eni-b")} {
		if err := e.call(ctx, control.OpRegister, r, &rr); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{create(t, e.fl, "VPC", "vpc-a", "ALL"), create(t, e.fl, "Subnet", "subnet-a", "REJECT"), create(t, e.fl, "NetworkInterface", "eni-a", "ACCEPT")}
	create(t, e.fl, "VPC", "vpc-b", "ALL")
	var set control.FlowLogSet
	if err := e.call(ctx, control.OpWatchFlowLogs, control.WatchRequest{AgentID: "a"}, &set); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, fl := range set.FlowLogs {
		got = append(got, fl.FlowLogID)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("agent a got %v, want %v", got, want)
	}
	// An agent the server has no registration of is told to register.
	var none control.FlowLogSet
	if err := e.call(ctx, control.OpWatchFlowLogs, control.WatchRequest{AgentID: "never-registered"}, &none); err == nil ||
		!strings.Contains(err.Error(), "HTTP 404") || !strings.Contains(err.Error(), `"code":"`+control.CodeUnknownAgent+`"`) {
		t.Fatalf("unregistered agent: %+v, %v", none, err)
	}
	var empty struct{}
	if err := e.call(ctx, control.OpReportStatus, control.StatusReport{AgentID: "a", FlowLogs: []control.FlowLogStatus{{FlowLogID: want[0], Status: "SUCCESS", Records: 3}}}, &empty); err != nil {
		t.Fatal(err)
	}
	e.authz.mu.Lock()
	asks := slices.Compact(slices.Clone(e.authz.asks))
	e.authz.mu.Unlock()
	if !slices.Equal(asks, []string{"flowlog:Register [*]", "flowlog:WatchFlowLogs [*]", "flowlog:ReportStatus [*]"}) {
		t.Fatalf("authorization asks: %v", asks)
	}
	// Re-registering without the subnet and interface drops their flow
	// logs from the agent's set, at a new revision.
	r := reg("a", "vpc-a", "subnet-a", "eni-a")
	r.Subnets, r.Interfaces = nil, nil
	rev := set.Revision
	if err := e.call(ctx, control.OpRegister, r, &rr); err != nil {
		t.Fatal(err)
	}
	if err := e.call(ctx, control.OpWatchFlowLogs, control.WatchRequest{AgentID: "a", Revision: rev}, &set); err != nil {
		t.Fatal(err)
	}
	if set.Revision == rev || len(set.FlowLogs) != 1 || set.FlowLogs[0].FlowLogID != want[0] {
		t.Fatalf("after re-registration: %+v", set)
	}
}

// The long poll: held while nothing changes (for the agent's wait, at
// most the server's PollWait), answered within milliseconds of a create
// or delete, answered at once when the agent's revision is stale.
func TestWatchLongPoll(t *testing.T) {
	e := start(t, 400*time.Millisecond)
	ctx := context.Background()
	var rr control.RegisterResult
	if err := e.call(ctx, control.OpRegister, reg("a", "vpc-a", "subnet-a", "eni-a"), &rr); err != nil || rr.PollWait != 400*time.Millisecond {
		t.Fatal(rr, err)
	}
	var set control.FlowLogSet
	if err := e.call(ctx, control.OpWatchFlowLogs, control.WatchRequest{AgentID: "a"}, &set); err != nil {
		t.Fatal(err)
	}
	// Capped by PollWait although the agent asks for a minute.
	t0 := time.Now()
	if err := e.call(ctx, control.OpWatchFlowLogs, control.WatchRequest{AgentID: "a", Revision: set.Revision, Wait: time.Minute}, &set); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d < 350*time.Millisecond || d > 5*time.Second {
		t.Fatalf("idle watch held %v, want about 400ms", d)
	}
	// Woken by a create: measure how soon after it the agent knows.
	var lat []time.Duration
	rev := set.Revision
	for i := range 5 {
		done := make(chan time.Time, 1)
		var got control.FlowLogSet
		go func() {
			if err := e.call(ctx, control.OpWatchFlowLogs, control.WatchRequest{AgentID: "a", Revision: rev, Wait: time.Minute}, &got); err != nil {
				t.Error(err)
			}
			done <- time.Now()
		}()
		time.Sleep(100 * time.Millisecond) // let the watch reach the server
		t1 := time.Now()
		if i%2 == 0 {
			create(t, e.fl, "NetworkInterface", "eni-a", []string{"ALL", "REJECT", "ALL"}[i/2])
		} else {
			all, _ := e.fl.DescribeFlowLogs(ctx, ec2.DescribeFlowLogsInput{})
			if _, err := e.fl.DeleteFlowLogs(ctx, nil, []string{all.FlowLogs[0].ID}); err != nil {
				t.Fatal(err)
			}
		}
		at := <-done
		// A watch that began after the change answered at once with it
		// too; either way the agent has the new revision.
		if got.Revision == rev {
			t.Fatalf("watch %d returned the old revision", i)
		}
		lat = append(lat, at.Sub(t1))
		rev = got.Revision
	}
	slices.Sort(lat)
	if lat[len(lat)-1] > 300*time.Millisecond {
		t.Errorf("change → watch answered: %v", lat)
	}
	t.Logf("change → agent's watch answered: min %v, max %v (includes the change's own commit)", lat[0], lat[len(lat)-1])
	// A stale revision is answered at once.
	t0 = time.Now()
	if err := e.call(ctx, control.OpWatchFlowLogs, control.WatchRequest{AgentID: "a", Revision: rev - 1, Wait: time.Minute}, &set); err != nil || time.Since(t0) > 200*time.Millisecond {
		t.Fatalf("stale revision: %v after %v", err, time.Since(t0))
	}
}

// A malformed body or an unknown operation is a JSON error naming it.
func TestBadRequests(t *testing.T) {
	e := start(t, time.Second)
	ctx := context.Background()
	var out struct{}
	for _, c := range []struct {
		op   string
		body any
		want string
	}{
		{control.OpRegister, control.Registration{}, `"code":"MissingParameter"`},
		{control.OpRegister, control.Registration{AgentID: "a", VPCs: []control.VPC{{VPCID: "vpc-1", CIDRBlocks: []string{"10.0.0.0"}}}}, `vpcs[0].cidrBlocks`},
		{control.OpWatchFlowLogs, control.WatchRequest{}, `agentId is required`},
		{control.OpReportStatus, control.StatusReport{AgentID: "a", FlowLogs: []control.FlowLogStatus{{FlowLogID: "fl-1", Status: "OK"}}}, `flowLogs[0].status`},
		{control.OpRegister, "not an object", `"code":"InvalidParameterValue"`},
		{"Unregister", struct{}{}, `HTTP 404`},
	} {
		err := e.call(ctx, c.op, c.body, &out)
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(c.want)) {
			t.Errorf("%s %+v: %v, want %s", c.op, c.body, err, c.want)
		}
	}
}
