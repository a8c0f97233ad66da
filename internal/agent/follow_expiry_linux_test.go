package agent

import (
	"context"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/apitest"
	"github.com/flowlog/flowlog/internal/api/control"
	"github.com/flowlog/flowlog/internal/api/ec2"
)

// TestFollowServerExpiresAgent: a server that dropped the agent from its
// inventory (inventory-expiry; here forced with a clock moved two hours
// on) answers its next watch UnknownAgent, and the agent registers again
// by itself: its links are back in describe-network-interfaces and the
// flow log on its VPC, kept by the server, runs throughout.
func TestFollowServerExpiresAgent(t *testing.T) {
	t.Parallel()
	apitest.RequireCLI(t)
	l := newLab(t)
	ctx := context.Background()
	db, err := api.OpenDB(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var skew atomic.Int64 // how far the server's clock is ahead
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	svc, err := ec2.New(ctx, db, ec2.Options{AccountID: apitest.AccountID, Region: apitest.Region, Now: now, InventoryExpiry: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	srvAPI, err := api.New(api.Options{
		Credentials: api.StaticKeys{AccountID: apitest.AccountID, Keys: []api.AccessKey{{AccessKeyID: apitest.AccessKey, SecretAccessKey: apitest.SecretKey}}},
		Services:    []api.Service{svc, control.NewService(svc, control.ServiceOptions{PollWait: 2 * time.Second})},
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- api.ListenAndServe(sctx, ln, srvAPI, 5*time.Second, "", "") }()
	srv := &controlServer{url: "http://" + ln.Addr().String(), addr: ln.Addr().String()}
	a, logs := l.startLogged(t, l.serverConfig(srv))
	t.Cleanup(func() {
		_ = a.Stop()
		cancel()
		if err := <-done; err != nil && err != http.ErrServerClosed {
			t.Errorf("control server: %v", err)
		}
		db.Close()
	})
	cli := srv.cli()

	var va describedENI
	eventually(t, 10*time.Second, "lab links registered", func() bool {
		va = registeredENIs(t, cli)[pA.Addr().String()]
		return va.NetworkInterfaceId != ""
	})
	id := createFlowLog(t, cli, "--resource-type", "VPC", "--resource-ids", va.VpcId, "--traffic-type", "ALL",
		"--log-destination-type", "file", "--log-destination", t.TempDir())
	eventually(t, 5*time.Second, "flow log running", func() bool { return runs(a, id) })

	// Two hours on: the sweep drops the agent (a watch that started in
	// between counts as hearing from it: move on again then).
	var dropped []ec2.ExpiredAgent
	eventually(t, 5*time.Second, "agent dropped by the sweep", func() bool {
		skew.Add(int64(2 * time.Hour))
		if dropped, err = svc.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		return len(dropped) == 1
	})
	if dropped[0].Interfaces < 2 {
		t.Fatalf("dropped: %+v", dropped)
	}
	took := eventually(t, 10*time.Second, "agent registered again", func() bool {
		return logs.count("registering again", control.CodeUnknownAgent) > 0 && registeredENIs(t, cli)[pA.Addr().String()].NetworkInterfaceId == va.NetworkInterfaceId
	})
	t.Logf("dropped agent back in describe-network-interfaces %s after the sweep", took.Round(time.Millisecond))
	if !runs(a, id) {
		t.Fatalf("flow log stopped while the agent was forgotten: running %v", a.FlowLogIDs())
	}
	// It follows the server again: a second flow log reaches it.
	id2 := createFlowLog(t, cli, "--resource-type", "NetworkInterface", "--resource-ids", va.NetworkInterfaceId, "--traffic-type", "REJECT",
		"--log-destination-type", "file", "--log-destination", t.TempDir())
	eventually(t, 5*time.Second, "new flow log running after re-registration", func() bool { return slices.Contains(a.FlowLogIDs(), id2) })
}
