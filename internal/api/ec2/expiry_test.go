package ec2_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/apitest"
	"github.com/flowlog/flowlog/internal/api/control"
	"github.com/flowlog/flowlog/internal/api/ec2"
)

// clock is a settable clock for ec2.Options.Now.
type clock struct{ ms atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.ms.Store(t.UnixMilli())
	return c
}

func (c *clock) now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *clock) add(d time.Duration)     { c.ms.Add(d.Milliseconds()) }
func (c *clock) set(t time.Time)         { c.ms.Store(t.UnixMilli()) }
func (c *clock) since(t time.Time) int64 { return c.ms.Load() - t.UnixMilli() }

// syncBuffer is a log destination tests read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// agentClient is the agent side of the protocol, as the agent calls it.
func agentClient(t *testing.T, e *env) *control.Client {
	t.Helper()
	c, err := control.NewClient(control.ClientConfig{URL: e.srv.URL, AccessKeyID: apitest.AccessKey, SecretAccessKey: apitest.SecretKey, Region: apitest.Region})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// eniIDs lists describe-network-interfaces' ids, as the AWS CLI prints them.
func eniIDs(t *testing.T, e *env) []string {
	t.Helper()
	var out struct {
		NetworkInterfaces []struct{ NetworkInterfaceId string }
	}
	e.cli.JSON(t, &out, "ec2", "describe-network-interfaces")
	var ids []string
	for _, n := range out.NetworkInterfaces {
		ids = append(ids, n.NetworkInterfaceId)
	}
	return ids
}

// invENIs lists the inventory's interfaces as the Go API (the console)
// reads them: the same store as describe-network-interfaces, without
// the CLI's start-up time.
func invENIs(t *testing.T, e *env) []string {
	t.Helper()
	inv, err := e.svc.Inventory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, in := range inv.Interfaces {
		ids = append(ids, in.InterfaceID)
	}
	return ids
}

func vpcIDs(t *testing.T, e *env) []string {
	t.Helper()
	var out struct{ Vpcs []struct{ VpcId string } }
	e.cli.JSON(t, &out, "ec2", "describe-vpcs")
	var ids []string
	for _, v := range out.Vpcs {
		ids = append(ids, v.VpcId)
	}
	return ids
}

func subnetIDs(t *testing.T, e *env) []string {
	t.Helper()
	var out struct{ Subnets []struct{ SubnetId string } }
	e.cli.JSON(t, &out, "ec2", "describe-subnets")
	var ids []string
	for _, s := range out.Subnets {
		ids = append(ids, s.SubnetId)
	}
	return ids
}

// An agent that stops calling leaves describe-network-interfaces,
// describe-subnets and describe-vpcs once the sweep finds it silent for
// longer than the expiry; a still-active agent (watching, reporting)
// stays; the flow logs on the dropped resources stay; the dropped agent's
// next watch is answered UnknownAgent and, once it registers again, its
// interfaces and flow logs are back.
func TestInventoryExpiry(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	clk := newClock(t0)
	var logs syncBuffer
	e := start(t, ec2.Options{Now: clk.now, InventoryExpiry: time.Hour,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx := context.Background()
	ag := agentClient(t, e)
	gone, alive := registration("gone", "vpc-0000aaaa", 3), registration("alive", "vpc-0000bbbb", 2)
	for _, r := range []control.Registration{gone, alive} {
		if _, err := ag.Register(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// Flow logs on the silent agent's VPC and one of its interfaces.
	var onVPC, onENI cliCreate
	e.cli.JSON(t, &onVPC, "ec2", "create-flow-logs", "--resource-type", "VPC", "--resource-ids", "vpc-0000aaaa", "--traffic-type", "ALL",
		"--log-destination-type", "file", "--log-destination", "/var/log/flows")
	e.cli.JSON(t, &onENI, "ec2", "create-flow-logs", "--resource-type", "NetworkInterface", "--resource-ids", "eni-gone0001", "--traffic-type", "REJECT",
		"--log-destination-type", "file", "--log-destination", "/var/log/flows")
	if got := invENIs(t, e); len(got) != 5 {
		t.Fatalf("before: %v", got)
	}

	// 40 minutes on, only "alive" calls: a watch (the long poll), then
	// a status report 15 minutes later.
	clk.add(40 * time.Minute)
	if _, err := ag.Watch(ctx, control.WatchRequest{AgentID: "alive"}); err != nil {
		t.Fatal(err)
	}
	clk.add(15 * time.Minute)
	if err := ag.ReportStatus(ctx, control.StatusReport{AgentID: "alive"}); err != nil {
		t.Fatal(err)
	}
	// 59 minutes: nobody is past the expiry yet.
	clk.add(4 * time.Minute)
	if dropped, err := e.svc.Sweep(ctx); err != nil || len(dropped) != 0 {
		t.Fatalf("sweep at 59 min: %+v, %v", dropped, err)
	}
	// 61 minutes: "gone" is.
	clk.add(2 * time.Minute)
	dropped, err := e.svc.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(dropped) != 1 || dropped[0].AgentID != "gone" || dropped[0].Hostname != "host-gone" || dropped[0].Interfaces != 3 || !dropped[0].LastSeen.Equal(t0) {
		t.Fatalf("dropped: %+v", dropped)
	}
	if l := logs.String(); !strings.Contains(l, "agent expired") || !strings.Contains(l, "agent=gone hostname=host-gone interfaces=3") {
		t.Errorf("expiry not logged with agent, hostname, interfaces:\n%s", l)
	}
	if got, want := eniIDs(t, e), []string{"eni-alive0000", "eni-alive0001"}; !slices.Equal(got, want) {
		t.Fatalf("describe-network-interfaces after expiry: %v, want %v", got, want)
	}
	if got := vpcIDs(t, e); !slices.Equal(got, []string{"vpc-0000bbbb"}) {
		t.Fatalf("describe-vpcs after expiry: %v", got)
	}
	if got := subnetIDs(t, e); !slices.Equal(got, []string{"subnet-alivea", "subnet-aliveb"}) {
		t.Fatalf("describe-subnets after expiry: %v", got)
	}
	if stderr := e.cliFail(t, "ec2", "describe-network-interfaces", "--network-interface-ids", "eni-gone0000"); !strings.Contains(stderr, "InvalidNetworkInterfaceID.NotFound") {
		t.Errorf("describe of an expired interface: %s", stderr)
	}
	var d cliDescribe
	e.cli.JSON(t, &d, "ec2", "describe-flow-logs")
	if len(d.FlowLogs) != 2 {
		t.Fatalf("flow logs on expired resources must stay: %+v", d.FlowLogs)
	}
	// The console's inventory: the active agent's last call.
	inv, err := e.svc.Inventory(ctx)
	if err != nil || len(inv.Interfaces) != 2 || !inv.Interfaces[0].LastSeen.Equal(t0.Add(55*time.Minute)) || !inv.Interfaces[0].RegisteredAt.Equal(t0) {
		t.Fatalf("inventory: %+v, %v", inv.Interfaces, err)
	}

	// The dropped agent calls again: told to register, it does, and it
	// is back with the flow logs that stayed.
	_, err = ag.Watch(ctx, control.WatchRequest{AgentID: "gone"})
	var ce *control.Error
	if !control.IsUnknownAgent(err) || !errors.As(err, &ce) || ce.Status != 404 {
		t.Fatalf("watch of an expired agent: %v, want 404 %s", err, control.CodeUnknownAgent)
	}
	if _, err := ag.Register(ctx, gone); err != nil {
		t.Fatal(err)
	}
	set, err := ag.Watch(ctx, control.WatchRequest{AgentID: "gone"})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, fl := range set.FlowLogs {
		ids = append(ids, fl.FlowLogID)
	}
	if !slices.Equal(ids, []string{onVPC.FlowLogIds[0], onENI.FlowLogIds[0]}) {
		t.Fatalf("re-registered agent's flow logs: %v", ids)
	}
	if got := invENIs(t, e); len(got) != 5 {
		t.Fatalf("after re-registration: %v", got)
	}
	// Back, it keeps calling and stays, while "alive", now silent for
	// over an hour since its report, goes.
	clk.add(30 * time.Minute)
	if err := ag.ReportStatus(ctx, control.StatusReport{AgentID: "gone"}); err != nil {
		t.Fatal(err)
	}
	clk.add(30 * time.Minute)
	dropped, err = e.svc.Sweep(ctx)
	if err != nil || len(dropped) != 1 || dropped[0].AgentID != "alive" {
		t.Fatalf("second sweep: %+v, %v", dropped, err)
	}
	if got := invENIs(t, e); len(got) != 3 || !strings.HasPrefix(got[0], "eni-gone") {
		t.Fatalf("after the second sweep: %v", got)
	}
}

// inventory-expiry 0 keeps agents however long they are silent.
func TestInventoryExpiryOff(t *testing.T) {
	t.Parallel()
	clk := newClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	e := start(t, ec2.Options{Now: clk.now})
	e.register(t, registration("a", "vpc-0000aaaa", 2))
	clk.add(365 * 24 * time.Hour)
	if dropped, err := e.svc.Sweep(context.Background()); err != nil || len(dropped) != 0 {
		t.Fatalf("sweep without expiry: %+v, %v", dropped, err)
	}
	if got := eniIDs(t, e); len(got) != 2 {
		t.Fatalf("after a year without expiry: %v", got)
	}
}

// A restarted server gives every agent the expiry to call it before
// dropping it, however long it was down; last-seen times written at Stop
// survive the restart; a store from before last_seen_ms gets the column.
func TestInventoryExpiryAcrossRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := api.OpenDB(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The table as the store had it before last_seen_ms.
	if _, err := db.ExecContext(ctx, `CREATE TABLE ec2_agents (agent_id TEXT PRIMARY KEY, hostname TEXT NOT NULL, version TEXT NOT NULL,
		instance_id TEXT NOT NULL, account_id TEXT NOT NULL, region TEXT NOT NULL, az_id TEXT NOT NULL, registered_ms INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	clk := newClock(t0)
	opts := ec2.Options{Now: clk.now, InventoryExpiry: time.Hour}
	svc, err := ec2.New(ctx, db, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		if err := svc.Register(ctx, registration(id, "vpc-0000000"+id, 1)); err != nil {
			t.Fatal(err)
		}
	}
	clk.add(10 * time.Minute)
	if _, err := svc.FlowLogsFor(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := svc.Stop(); err != nil {
		t.Fatal(err)
	}
	var seen int64
	if err := db.QueryRowContext(ctx, `SELECT last_seen_ms FROM ec2_agents WHERE agent_id = 'a'`).Scan(&seen); err != nil || seen != clk.ms.Load() {
		t.Fatalf("last_seen_ms written at Stop: %d, %v; want %d", seen, err, clk.ms.Load())
	}

	// Down for a day; then only "a" calls the new server.
	clk.add(24 * time.Hour)
	restart := clk.now()
	svc, err = ec2.New(ctx, db, opts)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := svc.Inventory(ctx)
	if err != nil || len(inv.Interfaces) != 2 || !inv.Interfaces[0].LastSeen.Equal(t0.Add(10*time.Minute)) || !inv.Interfaces[1].LastSeen.Equal(t0) {
		t.Fatalf("inventory after restart: %+v, %v", inv.Interfaces, err)
	}
	clk.add(50 * time.Minute)
	if _, err := svc.FlowLogsFor(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if dropped, err := svc.Sweep(ctx); err != nil || len(dropped) != 0 {
		t.Fatalf("sweep within the expiry of the restart: %+v, %v", dropped, err)
	}
	clk.set(restart.Add(61 * time.Minute))
	dropped, err := svc.Sweep(ctx)
	if err != nil || len(dropped) != 1 || dropped[0].AgentID != "b" || clk.since(dropped[0].LastSeen) < int64(24*time.Hour/time.Millisecond) {
		t.Fatalf("sweep an expiry after the restart: %+v, %v", dropped, err)
	}
	if _, err := svc.FlowLogsFor(ctx, "b"); !control.IsUnknownAgent(asControlError(err)) {
		t.Fatalf("FlowLogsFor of a dropped agent: %v", err)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM ec2_interfaces`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("interfaces left: %d, %v", n, err)
	}
}

// asControlError turns the service's *api.Error into the *control.Error
// an agent would see, for IsUnknownAgent.
func asControlError(err error) error {
	var ae *api.Error
	if errors.As(err, &ae) {
		return &control.Error{Op: control.OpWatchFlowLogs, Status: ae.Status, Code: ae.Code, Message: ae.Message}
	}
	return err
}

// The sweeper that flowlog serve runs (Start) drops a silent agent on
// its own while an agent that keeps long-polling stays; Stop ends it.
// Real time, a 600 ms expiry.
func TestInventorySweeper(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	e := start(t, ec2.Options{InventoryExpiry: 600 * time.Millisecond, SweepInterval: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx := context.Background()
	ag := agentClient(t, e)
	for _, r := range []control.Registration{registration("silent", "vpc-0000aaaa", 2), registration("polling", "vpc-0000bbbb", 1)} {
		if _, err := ag.Register(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	runDone := make(chan struct{})
	go func() { defer close(runDone); e.svc.Start(ctx) }()
	// "polling" long-polls as an agent does: 200 ms waits, back to back.
	pctx, stopPolling := context.WithCancel(ctx)
	polled := make(chan error, 1)
	go func() {
		var rev int64
		for pctx.Err() == nil {
			set, err := ag.Watch(pctx, control.WatchRequest{AgentID: "polling", Revision: rev, Wait: 200 * time.Millisecond})
			if err != nil && pctx.Err() == nil {
				polled <- err
				return
			}
			rev = set.Revision
		}
		polled <- nil
	}()
	t0 := time.Now()
	for {
		inv, err := e.svc.Inventory(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(inv.Interfaces) == 1 {
			break
		}
		if time.Since(t0) > 5*time.Second {
			t.Fatalf("silent agent still listed after 5 s: %+v", inv.Interfaces)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("silent agent dropped %v after the sweeper started (expiry 600 ms, sweeps every 50 ms)", time.Since(t0).Round(time.Millisecond))
	if got := eniIDs(t, e); !slices.Equal(got, []string{"eni-polling0000"}) {
		t.Fatalf("describe-network-interfaces: %v", got)
	}
	stopPolling()
	if err := <-polled; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "agent=silent hostname=host-silent interfaces=2") {
		t.Errorf("expiry log:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "agent=polling hostname=host-polling interfaces") {
		t.Errorf("the polling agent expired:\n%s", logs.String())
	}
	if err := e.svc.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-runDone:
	case <-time.After(5 * time.Second):
		t.Fatal("Start did not return after Stop")
	}
}

// benchService is a service on its own store with n registered agents.
func benchService(b *testing.B, n int) (*ec2.Service, *sql.DB) {
	b.Helper()
	ctx := context.Background()
	db, err := api.OpenDB(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	svc, err := ec2.New(ctx, db, ec2.Options{InventoryExpiry: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		if err := svc.Register(ctx, registration(fmt.Sprintf("a%d", i), "vpc-0000aaaa", 2)); err != nil {
			b.Fatal(err)
		}
	}
	return svc, db
}

// What a watch costs the store now: a read transaction, the agent
// marked heard in memory.
func BenchmarkWatchHeartbeat(b *testing.B) {
	svc, _ := benchService(b, 1)
	ctx := context.Background()
	for b.Loop() {
		if _, err := svc.FlowLogsFor(ctx, "a0"); err != nil {
			b.Fatal(err)
		}
	}
}

// What writing last-seen at every call would add to each watch: one
// committed UPDATE (WAL, synchronous=FULL: an fsync).
func BenchmarkLastSeenCommitPerCall(b *testing.B) {
	_, db := benchService(b, 1)
	ctx := context.Background()
	ms := time.Now().UnixMilli()
	for b.Loop() {
		ms++
		if _, err := db.ExecContext(ctx, `UPDATE ec2_agents SET last_seen_ms = ? WHERE agent_id = 'a0'`, ms); err != nil {
			b.Fatal(err)
		}
	}
}

// A sweep of 1,000 agents that all called since the last one: their
// last-seen times in one transaction, and the expiry query.
func BenchmarkSweep1000Agents(b *testing.B) {
	svc, _ := benchService(b, 1000)
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		for i := range 1000 {
			_ = svc.ReportStatus(ctx, control.StatusReport{AgentID: fmt.Sprintf("a%d", i)})
		}
		b.StartTimer()
		if _, err := svc.Sweep(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
