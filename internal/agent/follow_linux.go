package agent

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/flowlog/flowlog/internal/api/control"
	"github.com/flowlog/flowlog/internal/inventory"
)

// follower makes an agent follow a `flowlog serve` server (Config.Server):
// three goroutines, each retrying with backoff on its own, so that one
// failing call does not hold up the others:
//
//   - register: reports the agent's interfaces at start and whenever they
//     change;
//   - watch: long-polls the flow logs covering the agent and applies a new
//     set with a reload (the flow logs that did not change keep running),
//     saving it in the state file;
//   - status: reports each flow log's delivery status every
//     status-interval, and at once when one changes.
//
// While the server cannot be reached the agent keeps running the last set
// it received (also across a restart, from the state file); each kind of
// call logs when it starts failing and when it works again, not per try.
type follower struct {
	a       *Agent
	client  *control.Client
	srv     Server
	agentID string
	log     *slog.Logger

	registered chan struct{} // closed at the first registration
	regOnce    sync.Once
	rewatch    chan struct{} // a new registration: ask for the set again
	reregister chan struct{} // the server forgot the agent: register again
	statusNow  chan struct{}
	pollWait   atomic.Int64 // nanoseconds; the server's cap or ours

	applyMu sync.Mutex // one apply at a time (watch, SIGHUP)

	mu     sync.Mutex
	base   Config             // the agent's configuration; FlowLogs are the server's
	set    control.FlowLogSet // the last set received (or saved)
	failed map[string]string  // why a flow log of the set does not run

	wg sync.WaitGroup
}

// newFollower builds the follower of a (on Start, before the flow logs
// are opened) and puts the flow logs last received from the server into
// a's configuration.
func newFollower(a *Agent) (*follower, error) {
	srv := *a.cfg.Server
	hc := a.deps.ServerHTTP
	if hc == nil {
		var err error
		if hc, err = srv.HTTPClient(); err != nil {
			return nil, err
		}
	}
	client, err := control.NewClient(control.ClientConfig{
		URL: srv.URL, AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.Secret(), Region: srv.Region,
		HTTPClient: hc, Now: a.deps.Now,
	})
	if err != nil {
		return nil, err
	}
	f := &follower{
		a: a, client: client, srv: srv, log: a.log.With("server", srv.URL),
		registered: make(chan struct{}),
		rewatch:    make(chan struct{}, 1),
		reregister: make(chan struct{}, 1),
		statusNow:  make(chan struct{}, 1),
		failed:     map[string]string{},
	}
	f.pollWait.Store(int64(srv.PollWait))
	f.agentID = srv.AgentID
	if f.agentID == "" {
		f.agentID = a.inv.ResolveLink(a.host, inventory.Link{}).InstanceID
	}
	f.base = a.cfg
	f.base.FlowLogs = nil
	set, ok, err := loadState(srv.StateFile, srv.URL, f.agentID)
	if err != nil {
		f.log.Warn("the flow logs last received from the server cannot be read: none run until the server answers", "error", err)
	}
	if ok {
		f.set = set
		var defs []FlowLog
		defs, f.failed = f.mapSet(set)
		a.cfg.FlowLogs = defs
		f.log.Info("running the flow logs last received from the server until it answers", "revision", set.Revision, "flow_logs", len(defs), "state_file", srv.StateFile)
	} else {
		a.cfg.FlowLogs = nil
	}
	f.log.Info("following the server", "agent_id", f.agentID)
	return f, nil
}

// mapSet maps the server's flow logs onto the agent's; those it cannot
// run are returned with the reason.
func (f *follower) mapSet(set control.FlowLogSet) ([]FlowLog, map[string]string) {
	var defs []FlowLog
	failed := map[string]string{}
	for _, in := range set.FlowLogs {
		fl, err := ServerFlowLog(in, &f.srv)
		if err != nil {
			failed[in.FlowLogID] = err.Error()
			continue
		}
		defs = append(defs, fl)
	}
	return defs, failed
}

// deliveryRenewal is how long before a delivery-role session expires
// the agent asks for the next one (from 5 to 10 minutes before: the
// jitter spreads the agents' requests).
const deliveryRenewal = 10 * time.Minute

// deliveryCredentials are the credentials of flow log id's delivery
// role: sessions the server issues (GetDeliveryCredentials), cached and
// renewed before they expire.
func (f *follower) deliveryCredentials(id string) *aws.CredentialsCache {
	return aws.NewCredentialsCache(&control.DeliveryCredentialsProvider{Client: f.client, AgentID: f.agentID, FlowLogID: id},
		func(o *aws.CredentialsCacheOptions) {
			o.ExpiryWindow = deliveryRenewal
			o.ExpiryWindowJitterFrac = 0.5
		})
}

// openFailed records a flow log that could not be opened at Start.
func (f *follower) openFailed(id string, err error) {
	f.log.Error("flow log not running", "flow_log", id, "error", err)
	var fe *FlowLogError
	if errors.As(err, &fe) {
		err = fe.Err
	}
	f.mu.Lock()
	f.failed[id] = err.Error()
	f.mu.Unlock()
}

func (f *follower) start(ctx context.Context) {
	f.wg.Add(3)
	go func() { defer f.wg.Done(); f.registerLoop(ctx) }()
	go func() { defer f.wg.Done(); f.watchLoop(ctx) }()
	go func() { defer f.wg.Done(); f.statusLoop(ctx) }()
}

// wait waits for the goroutines (after the agent's context ended).
func (f *follower) wait() {
	f.wg.Wait()
	f.client.CloseIdleConnections()
}

// callHealth logs when a kind of call starts failing and when it works again.
type callHealth struct {
	op      string
	log     *slog.Logger
	failing bool
}

func (h *callHealth) note(err error) {
	switch {
	case err != nil && !h.failing:
		h.failing = true
		h.log.Warn("server call failing: retrying with backoff; the agent keeps running its flow logs", "call", h.op, "error", err)
	case err == nil && h.failing:
		h.failing = false
		h.log.Info("server call works again", "call", h.op)
	}
}

// backoff is the wait before try attempt+1: 1 s doubled per failure up
// to 30 s, drawn from its upper half so that agents spread out.
func backoff(attempt int) time.Duration {
	d := 30 * time.Second
	if attempt < 5 {
		d = time.Second << attempt
	}
	return d/2 + rand.N(d/2+1)
}

// sleep waits d or until ctx ends (false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// registerLoop registers the agent's interfaces at start and whenever
// they change.
func (f *follower) registerLoop(ctx context.Context) {
	h := callHealth{op: control.OpRegister, log: f.log}
	var last *control.Registration
	attempt := 0
	for {
		reg, ok := f.registration()
		if !ok {
			return
		}
		if last == nil || !reflect.DeepEqual(reg, *last) {
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			res, err := f.client.Register(cctx, reg)
			cancel()
			if ctx.Err() != nil {
				return
			}
			h.note(err)
			if err != nil {
				if !sleep(ctx, backoff(attempt)) {
					return
				}
				attempt++
				continue
			}
			attempt = 0
			last = &reg
			if res.PollWait > 0 {
				f.pollWait.Store(int64(min(res.PollWait, f.srv.PollWait)))
			}
			f.log.Info("registered", "interfaces", len(reg.Interfaces), "subnets", len(reg.Subnets), "vpcs", len(reg.VPCs))
			f.regOnce.Do(func() { close(f.registered) })
			// The set covering the agent may have changed with it.
			poke(f.rewatch)
		}
		select {
		case <-ctx.Done():
			return
		case <-f.a.invChanged:
		case <-f.reregister:
			last = nil
		}
	}
}

// registration is what the agent reports; false when it stopped.
func (f *follower) registration() (control.Registration, bool) {
	var r control.Registration
	ok := f.a.do(func() { r = f.a.registration(f.agentID, f.a.deps.Version) })
	return r, ok
}

// watchLoop long-polls the server's flow logs and applies each new set.
func (f *follower) watchLoop(ctx context.Context) {
	select {
	case <-ctx.Done():
		return
	case <-f.registered:
	}
	h := callHealth{op: control.OpWatchFlowLogs, log: f.log}
	// Revision 0 at first: the server answers the set at once, even
	// when a saved set's revision happens to be the server's (a server
	// whose store was replaced counts again from 1).
	var rev int64
	attempt := 0
	for {
		wait := time.Duration(f.pollWait.Load())
		wctx, cancel := context.WithTimeout(ctx, wait+15*time.Second)
		var forced atomic.Bool
		go func() {
			select {
			case <-f.rewatch:
				forced.Store(true)
				cancel()
			case <-wctx.Done():
			}
		}()
		set, err := f.client.Watch(wctx, control.WatchRequest{AgentID: f.agentID, Revision: rev, Wait: wait})
		cancel()
		if ctx.Err() != nil {
			return
		}
		if forced.Load() {
			// Registered again: ask for the whole set now.
			rev = 0
			continue
		}
		if control.IsUnknownAgent(err) {
			// The server dropped the agent (not heard from within its
			// inventory-expiry) or lost its store: register again; the
			// registration pokes rewatch. The flow logs keep running.
			f.log.Info("the server does not know this agent: registering again", "error", err)
			poke(f.reregister)
		} else {
			h.note(err)
		}
		if err != nil {
			if !sleep(ctx, backoff(attempt)) {
				return
			}
			attempt++
			continue
		}
		attempt = 0
		if set.Revision == rev && !f.retryFailed() {
			continue
		}
		rev = set.Revision
		// The revision also moves when any agent registers: apply only
		// what changed the set.
		f.mu.Lock()
		same := reflect.DeepEqual(set.FlowLogs, f.set.FlowLogs) && f.set.FlowLogs != nil
		if same {
			f.set.Revision = set.Revision
		}
		f.mu.Unlock()
		if same && !f.retryFailed() {
			continue
		}
		f.apply(set)
		if !same {
			if err := saveState(f.srv.StateFile, f.srv.URL, f.agentID, set, f.a.deps.Now()); err != nil {
				f.log.Warn("the flow logs received are not kept for a restart", "error", err)
			}
		}
	}
}

// retryFailed reports whether a flow log of the set failed to open (its
// destination may work now); mapping failures do not change.
func (f *follower) retryFailed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, in := range f.set.FlowLogs {
		if _, bad := f.failed[in.FlowLogID]; bad {
			if _, err := ServerFlowLog(in, &f.srv); err == nil {
				return true
			}
		}
	}
	return false
}

// apply runs set: new flow logs are opened, deleted ones are flushed and
// closed, the others keep running. A flow log that cannot be opened is
// left out (and reported FAILED); the others run.
func (f *follower) apply(set control.FlowLogSet) ([]string, error) {
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	defs, failed := f.mapSet(set)
	f.mu.Lock()
	base := f.base
	f.mu.Unlock()
	var warnings []string
	var err error
	for {
		cfg := base
		cfg.FlowLogs = defs
		warnings, err = f.a.reloadConfig(cfg.Defaults())
		var fe *FlowLogError
		if err != nil && errors.As(err, &fe) {
			if i := slices.IndexFunc(defs, func(d FlowLog) bool { return d.ID == fe.ID }); i >= 0 {
				failed[fe.ID] = fe.Err.Error()
				defs = slices.Delete(defs, i, i+1)
				continue
			}
		}
		break
	}
	if err != nil {
		select {
		case <-f.a.done: // stopping: nothing to apply to
		default:
			f.log.Error("flow logs from the server not applied", "revision", set.Revision, "error", err)
		}
		return warnings, err
	}
	f.mu.Lock()
	old, oldSet := f.failed, f.set
	f.set, f.failed = set, failed
	f.mu.Unlock()
	for id, msg := range failed {
		if old[id] != msg {
			f.log.Error("flow log not running", "flow_log", id, "error", msg)
		}
	}
	level := slog.LevelInfo
	if reflect.DeepEqual(oldSet.FlowLogs, set.FlowLogs) && reflect.DeepEqual(old, failed) {
		level = slog.LevelDebug // a retry of those that failed, failing again
	}
	f.log.Log(context.Background(), level, "flow logs from the server applied", "revision", set.Revision, "running", len(defs), "failed", len(failed))
	poke(f.statusNow)
	return warnings, nil
}

// reloadBase applies a new agent configuration (SIGHUP) while keeping the
// server's flow logs.
func (f *follower) reloadBase(cfg Config) ([]string, error) {
	var warnings []string
	next := *cfg.Server
	next.secret = f.srv.secret
	if next != f.srv {
		warnings = append(warnings, "server changed: it takes effect at the next start")
	}
	cfg.Server = &f.srv
	cfg.FlowLogs = nil
	f.mu.Lock()
	f.base = cfg
	set := f.set
	f.mu.Unlock()
	w, err := f.apply(set)
	if err == nil {
		// What needs a restart stays as it runs: the next apply must
		// not warn about it again.
		var eff Config
		if f.a.do(func() { eff = f.a.cfg }) {
			eff.FlowLogs = nil
			f.mu.Lock()
			f.base = eff
			f.mu.Unlock()
		}
	}
	return append(warnings, w...), err
}

// statusLoop reports delivery status: at once when a flow log's status
// or message changes, else every status-interval.
func (f *follower) statusLoop(ctx context.Context) {
	h := callHealth{op: control.OpReportStatus, log: f.log}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last *control.StatusReport
	var lastSent, next time.Time
	attempt := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-f.statusNow:
			next = time.Time{}
		}
		rep, ok := f.report()
		if !ok {
			return
		}
		now := time.Now()
		if now.Before(next) {
			continue
		}
		if last != nil && sameStatus(rep, *last) && now.Sub(lastSent) < f.srv.StatusInterval {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := f.client.ReportStatus(cctx, rep)
		cancel()
		if ctx.Err() != nil {
			return
		}
		h.note(err)
		if err != nil {
			next = now.Add(backoff(attempt))
			attempt++
			continue
		}
		attempt, next = 0, time.Time{}
		last, lastSent = &rep, now
	}
}

// report is the delivery status of every flow log of the set; false when
// the agent stopped.
func (f *follower) report() (control.StatusReport, bool) {
	rep := control.StatusReport{AgentID: f.agentID}
	running := map[string]control.FlowLogStatus{}
	ok := f.a.do(func() {
		for _, fl := range f.a.logs {
			st := fl.status.status(fl.id)
			if fl.spool != nil && st.Status == "SUCCESS" {
				if s := fl.spool.Stats(); s.DiskFull {
					st.Status, st.Message = "FAILED", "spool: disk full: records are dropped (SKIPDATA)"
				}
			}
			running[fl.id] = st
		}
	})
	if !ok {
		return rep, false
	}
	f.mu.Lock()
	for id, msg := range f.failed {
		running[id] = control.FlowLogStatus{FlowLogID: id, Status: "FAILED", Message: msg}
	}
	f.mu.Unlock()
	for _, st := range running {
		rep.FlowLogs = append(rep.FlowLogs, st)
	}
	slices.SortFunc(rep.FlowLogs, func(x, y control.FlowLogStatus) int { return strings.Compare(x.FlowLogID, y.FlowLogID) })
	return rep, true
}

// sameStatus reports whether two reports say the same (status and message
// of the same flow logs), counts aside.
func sameStatus(x, y control.StatusReport) bool {
	return slices.EqualFunc(x.FlowLogs, y.FlowLogs, func(a, b control.FlowLogStatus) bool {
		return a.FlowLogID == b.FlowLogID && a.Status == b.Status && a.Message == b.Message
	})
}

// registration is the inventory of the agent's host: every link the
// agent may capture on (interfaces patterns; loopbacks left out) with
// its ids and addresses, the subnets and VPCs they are in with the
// prefixes of their addresses. It runs on the loop.
func (a *Agent) registration(agentID, version string) control.Registration {
	self := a.inv.ResolveLink(a.host, inventory.Link{})
	hostname, _ := os.Hostname()
	r := control.Registration{
		AgentID: agentID, Hostname: hostname, Version: version,
		AccountID: a.inv.AccountID(), Region: a.inv.Region(), AZID: self.AZID, InstanceID: self.InstanceID,
		VPCs: []control.VPC{}, Subnets: []control.Subnet{}, Interfaces: []control.Interface{},
	}
	vpcs := map[string]*control.VPC{}
	subnets := map[string]*control.Subnet{}
	var order []string
	for ns := range a.known {
		order = append(order, ns)
	}
	slices.Sort(order)
	for _, ns := range order {
		links := slices.Clone(a.known[ns])
		slices.SortFunc(links, func(x, y inventory.Link) int { return strings.Compare(x.Name, y.Name) })
		for _, l := range links {
			if l.Loopback || !a.selected(l) {
				continue
			}
			res := a.inv.ResolveLink(a.host, l)
			it := control.Interface{
				InterfaceID: res.InterfaceID, SubnetID: res.SubnetID, VPCID: res.VPCID, InstanceID: res.InstanceID,
				MAC: l.MAC.String(), Addresses: []string{}, Name: l.Name, Netns: l.Netns,
			}
			for _, ad := range res.Addresses {
				it.Addresses = append(it.Addresses, ad.String())
			}
			var prefixes []string
			for _, p := range l.Addrs {
				if !p.Addr().IsLinkLocalUnicast() {
					prefixes = append(prefixes, p.Masked().String())
				}
			}
			sn := subnets[res.SubnetID]
			if sn == nil {
				sn = &control.Subnet{SubnetID: res.SubnetID, VPCID: res.VPCID, AZID: res.AZID, CIDRBlocks: []string{}}
				subnets[res.SubnetID] = sn
			}
			vpc := vpcs[res.VPCID]
			if vpc == nil {
				vpc = &control.VPC{VPCID: res.VPCID, CIDRBlocks: []string{}}
				vpcs[res.VPCID] = vpc
			}
			for _, p := range prefixes {
				if !slices.Contains(sn.CIDRBlocks, p) {
					sn.CIDRBlocks = append(sn.CIDRBlocks, p)
				}
				if !slices.Contains(vpc.CIDRBlocks, p) {
					vpc.CIDRBlocks = append(vpc.CIDRBlocks, p)
				}
			}
			r.Interfaces = append(r.Interfaces, it)
		}
	}
	for _, sn := range subnets {
		slices.SortFunc(sn.CIDRBlocks, comparePrefix)
		r.Subnets = append(r.Subnets, *sn)
	}
	for _, v := range vpcs {
		slices.SortFunc(v.CIDRBlocks, comparePrefix)
		r.VPCs = append(r.VPCs, *v)
	}
	slices.SortFunc(r.Subnets, func(x, y control.Subnet) int { return strings.Compare(x.SubnetID, y.SubnetID) })
	slices.SortFunc(r.VPCs, func(x, y control.VPC) int { return strings.Compare(x.VPCID, y.VPCID) })
	return r
}

// comparePrefix orders prefixes IPv4 first, then by address and length.
func comparePrefix(x, y string) int {
	px, ex := netip.ParsePrefix(x)
	py, ey := netip.ParsePrefix(y)
	if ex != nil || ey != nil {
		return strings.Compare(x, y)
	}
	if c := px.Addr().Compare(py.Addr()); c != 0 {
		return c
	}
	return px.Bits() - py.Bits()
}
