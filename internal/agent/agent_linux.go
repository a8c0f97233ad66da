package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/aggregate"
	"github.com/flowlog/flowlog/internal/capture"
	"github.com/flowlog/flowlog/internal/inventory"
	"github.com/flowlog/flowlog/internal/pipeline"
	"github.com/flowlog/flowlog/internal/policy"
	"github.com/flowlog/flowlog/internal/sink"
	"github.com/flowlog/flowlog/internal/spool"
)

// Deps are what an Agent uses from outside; zero fields get defaults.
type Deps struct {
	Logger *slog.Logger
	// Openers open destinations by kind; nil means DefaultOpeners.
	Openers map[sink.DestinationKind]Opener
	// NewSource creates the capture source; nil means NewSource.
	NewSource func(Config, *slog.Logger) (capture.Source, string, error)
	// HostRoot is where etc/machine-id is read; "" means "/".
	HostRoot string
	// NetnsDir is where named network namespaces are; "" means /run/netns.
	NetnsDir string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Version is the agent's version, reported to the server.
	Version string
	// ServerHTTP makes the calls to the server (Config.Server); nil means
	// a plain HTTP client.
	ServerHTTP *http.Client
}

// Agent is a running flowlog agent; see the package documentation.
type Agent struct {
	deps Deps
	log  *slog.Logger

	// Owned by the loop goroutine once started.
	cfg     Config
	host    inventory.Host
	inv     *inventory.Inventory
	src     capture.Source
	srcKind string
	watcher *inventory.Watcher
	nats    map[string]*inventory.NATFollower
	natErrs map[string]bool
	logs    []*flowLog
	links   map[linkKey]*attached
	known   map[string][]inventory.Link // the links of each followed namespace
	nextID  uint32
	lives   []*pipeline.LiveLog

	// retryAttach is set when an attach failed: the links are looked at
	// again every retryEvery until none fails.
	retryAttach bool
	lastRetry   time.Time

	// ctx is the lifetime of what the agent started (spools, watchers);
	// it ends after the last record is flushed. stop asks the loop to
	// flush and stop.
	ctx      context.Context
	cancel   context.CancelFunc
	stop     chan struct{}
	cmds     chan func()
	done     chan struct{}
	stopErr  error
	stopOnce sync.Once
	started  bool
	lastTick atomic.Int64 // Unix nanoseconds of the last drain

	metrics *metrics
	server  *http.Server
	addr    net.Addr

	// follow follows the control plane (Config.Server); nil without.
	follow *follower
	// invChanged is signalled when the links change (registration).
	invChanged chan struct{}
	// ret holds the spools of removed flow logs still delivering.
	ret retirer
}

// linkKey identifies a link while it exists.
type linkKey struct {
	netns string
	index int
}

// attached is a link the source captures on.
type attached struct {
	id   uint32
	link inventory.Link
	res  inventory.Resolved
	logs []*flowLog

	packets, bytes, lost uint64
}

// flowLog is one configured flow log and its live pipeline.
type flowLog struct {
	def   FlowLog
	id    string
	live  *pipeline.LiveLog
	spool *spool.Spool
	out   *spooled // the spool as the pipeline's sink; nil without
	// status watches the destination's calls (delivery status).
	status *delivery

	kind         resourceKind
	netns, value string
}

// New checks cfg (with defaults applied) and returns an agent that is not
// started.
func New(cfg Config, deps Deps) (*Agent, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Openers == nil {
		deps.Openers = DefaultOpeners()
	}
	if deps.NewSource == nil {
		deps.NewSource = NewSource
	}
	if deps.HostRoot == "" {
		deps.HostRoot = "/"
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	return &Agent{
		deps:    deps,
		log:     deps.Logger,
		cfg:     cfg,
		nats:    map[string]*inventory.NATFollower{},
		natErrs: map[string]bool{},
		links:   map[linkKey]*attached{},
		known:   map[string][]inventory.Link{},
		cmds:    make(chan func()),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),

		invChanged: make(chan struct{}, 1),
	}, nil
}

// Start creates the capture source, opens every flow log's destination,
// starts following interfaces, and serves metrics. After an error,
// everything started is stopped again.
func (a *Agent) Start(ctx context.Context) (err error) {
	if a.started {
		return errors.New("agent: started twice")
	}
	a.started = true
	a.ctx, a.cancel = context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		if err != nil {
			a.teardown()
			close(a.done)
		}
	}()
	if a.host, err = inventory.ReadHost(a.deps.HostRoot); err != nil {
		return err
	}
	if a.inv, err = a.inventory(a.cfg); err != nil {
		return err
	}
	if a.src, a.srcKind, err = a.deps.NewSource(a.cfg, a.log); err != nil {
		return err
	}
	for _, n := range a.cfg.Netns {
		if strings.HasPrefix(n, "/") && a.srcKind == "ebpf" {
			a.log.Warn("the eBPF source opens network namespaces by name in /run/netns only: links of this one cannot be attached (use --source afpacket, or ip netns attach NAME PID)", "netns", n)
		}
	}
	a.metrics = newMetrics()
	now := a.deps.Now()
	if a.cfg.Server != nil {
		// The flow logs are the server's: the last set it sent, until
		// it answers.
		if a.follow, err = newFollower(a); err != nil {
			return err
		}
	}
	for _, def := range a.cfg.FlowLogs {
		fl, err := a.openFlowLog(def, now)
		if err != nil && a.follow != nil {
			// One flow log that cannot be opened does not stop the
			// others; the server learns why.
			a.follow.openFailed(def.ID, err)
			continue
		}
		if err != nil {
			return err
		}
		a.logs = append(a.logs, fl)
	}
	a.retireOrphans()
	a.refreshLives()
	if err := a.startWatcher(); err != nil {
		return err
	}
	if err := a.serveMetrics(); err != nil {
		return err
	}
	a.log.Info("agent started", "source", a.srcKind, "flow_logs", len(a.logs), "metrics", a.MetricsAddr())
	// The agent's own links are known now; attach them before returning.
	a.drainUpdates()
	a.lastTick.Store(now.UnixNano())
	go a.loop(ctx)
	if a.follow != nil {
		a.follow.start(a.ctx)
	}
	return nil
}

// inventory builds the inventory of cfg: its file and top-level ids.
func (a *Agent) inventory(cfg Config) (*inventory.Inventory, error) {
	var file *inventory.File
	if cfg.Inventory != "" {
		f, err := inventory.Load(cfg.Inventory)
		if err != nil {
			return nil, err
		}
		file = f
	}
	return inventory.New(file, inventory.Overrides{
		AccountID: cfg.AccountID, Region: cfg.Region, AZID: cfg.AZID, VPCID: cfg.VPCID, InstanceID: cfg.InstanceID,
	})
}

// flowLogID is the flow log's id: configured, or derived from its
// definition and the host.
func (a *Agent) flowLogID(def FlowLog) string {
	if def.ID != "" {
		return def.ID
	}
	return inventory.DeriveID("fl", []byte(a.host.MachineID), def.Resource, def.TrafficType, def.Format,
		strconv.FormatInt(def.Interval, 10), def.Destination)
}

// FlowLogError is the failure to open one flow log.
type FlowLogError struct {
	ID  string
	Err error
}

func (e *FlowLogError) Error() string { return "flow log " + e.ID + ": " + e.Err.Error() }
func (e *FlowLogError) Unwrap() error { return e.Err }

// openFlowLog opens the destination (behind its spool) and the live
// pipeline of one flow log. Errors are *FlowLogError.
func (a *Agent) openFlowLog(def FlowLog, now time.Time) (*flowLog, error) {
	id := a.flowLogID(def)
	fl, err := a.openFlowLogID(def, id, now)
	if err != nil {
		var fe *FlowLogError
		if errors.As(err, &fe) {
			return nil, err
		}
		return nil, &FlowLogError{ID: id, Err: err}
	}
	return fl, nil
}

func (a *Agent) openFlowLogID(def FlowLog, id string, now time.Time) (_ *flowLog, err error) {
	format, err := parseFormat(def.Format)
	if err != nil {
		return nil, err
	}
	kind, _, err := sink.ParseDestination(def.Destination)
	if err != nil {
		return nil, &FlowLogError{ID: id, Err: err}
	}
	open := a.deps.Openers[kind]
	if open == nil {
		return nil, &FlowLogError{ID: id, Err: fmt.Errorf("destination %s: the agent cannot write to %s destinations (yet)", def.Destination, kind)}
	}
	openDef := def
	var creds *aws.CredentialsCache
	if a.follow != nil && def.DeliveryRole != "" {
		creds = a.follow.deliveryCredentials(id)
		openDef.Credentials = creds
	}
	dest, err := open(a.ctx, openDef, id, format, a.inv)
	if err != nil {
		return nil, &FlowLogError{ID: id, Err: err}
	}
	var role *roleSink
	if creds != nil {
		role = &roleSink{inner: dest.Sink, role: def.DeliveryRole, creds: creds}
		dest.Sink = role
	}
	fl := &flowLog{def: def, id: id, status: newDelivery(dest.Sink, a.deps.Now)}
	if role != nil {
		go role.prefetch(a.ctx, fl.status)
	}
	fl.kind, fl.netns, fl.value = parseResource(def.Resource)
	dest.Sink = fl.status
	var out pipeline.Sink = dest.Sink
	if a.cfg.Spool.Dir != "none" {
		// A removed flow log of this id may still deliver its backlog:
		// this flow log's spool takes it over.
		a.takeBack(id)
		// What a later start needs to deliver this spool should the
		// flow log be gone by then.
		if err := a.writeRetireInfo(def, id); err != nil {
			a.log.Warn("the spool cannot be delivered after a restart without this flow log", "flow_log", id, "error", err)
		}
		sc := a.spoolConfig(id, def, dest)
		sp, err := spool.New(sc, dest.Sink)
		if err != nil {
			dest.Sink.Close()
			return nil, &FlowLogError{ID: id, Err: err}
		}
		if err := sp.Start(a.ctx); err != nil {
			dest.Sink.Close()
			return nil, &FlowLogError{ID: id, Err: err}
		}
		fl.spool = sp
		fl.out = &spooled{sp: sp, timeout: a.cfg.ShutdownTimeout}
		out = fl.out
	}
	excl := policy.DefaultExclusions()
	if !*a.cfg.Exclusions {
		excl = policy.NoExclusions()
	}
	log := a.log.With("flow_log", id)
	live, err := pipeline.NewLiveLog(pipeline.LiveConfig{
		Format:      format,
		Aggregate:   aggregate.Config{Interval: def.Interval, MaxFlows: def.MaxFlows},
		TrafficType: pipeline.TrafficType(def.TrafficType),
		Exclusions:  excl,
		OnSinkError: func(err error) { log.Error("write records", "error", err) },
	}, out)
	if err == nil {
		err = live.Start(a.ctx, now.Unix())
	}
	if err != nil {
		out.Close()
		return nil, &FlowLogError{ID: id, Err: err}
	}
	fl.live = live
	return fl, nil
}

// spooled is a spool as a flow log's sink: Close waits at most timeout
// for the destination to take everything, then leaves the rest in the
// spool for the next start. The sink of a removed flow log retires
// instead (retire set): Close hands the spool to the background, which
// delivers everything before it removes the spool.
type spooled struct {
	sp      *spool.Spool
	timeout time.Duration
	retire  func(*spool.Spool, time.Duration) error
}

func (s *spooled) Write(recs []flow.Record) error { return s.sp.Write(recs) }
func (s *spooled) Advance(wm int64) error         { return s.sp.Advance(wm) }
func (s *spooled) Close() error {
	if s.retire != nil {
		return s.retire(s.sp, s.timeout)
	}
	done := make(chan error, 1)
	go func() { done <- s.sp.Close() }()
	t := time.NewTimer(s.timeout)
	defer t.Stop()
	select {
	case err := <-done:
		s.sp.Stop()
		return err
	case <-t.C:
		s.sp.Stop()
		<-done
		st := s.sp.Stats()
		return fmt.Errorf("destination did not take everything within %s: %d bytes stay in the spool for the next start", s.timeout, st.BacklogBytes)
	}
}

func (a *Agent) refreshLives() {
	a.lives = a.lives[:0]
	for _, fl := range a.logs {
		a.lives = append(a.lives, fl.live)
	}
}

func (a *Agent) startWatcher() error {
	var names []string
	for _, n := range a.cfg.Netns {
		if n != "all" {
			names = append(names, n)
		}
	}
	w, err := inventory.NewWatcher(inventory.WatchConfig{Netns: names, AllNetns: a.cfg.Netns.All(), NetnsDir: a.deps.NetnsDir})
	if err != nil {
		return err
	}
	if err := w.Start(a.ctx); err != nil {
		return fmt.Errorf("follow interfaces: %w", err)
	}
	a.watcher = w
	return nil
}

// drainUpdates applies the interface updates waiting now.
func (a *Agent) drainUpdates() {
	for {
		select {
		case u := <-a.watcher.Updates():
			a.applyUpdate(u)
		default:
			return
		}
	}
}

// loop is the agent's goroutine: everything but Start runs here.
func (a *Agent) loop(ctx context.Context) {
	defer close(a.done)
	tick := time.NewTicker(a.cfg.DrainInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			a.stopErr = a.shutdown()
			return
		case <-a.stop:
			a.stopErr = a.shutdown()
			return
		case u := <-a.watcher.Updates():
			a.applyUpdate(u)
		case f := <-a.cmds:
			f()
		case <-tick.C:
			a.tick()
		}
	}
}

// do runs f on the loop goroutine and waits for it; false when the agent
// is not running.
func (a *Agent) do(f func()) bool {
	done := make(chan struct{})
	select {
	case a.cmds <- func() { f(); close(done) }:
		<-done
		return true
	case <-a.done:
		return false
	}
}

// Stop flushes every open record of every flow log (the current window's
// too) to the destinations and releases everything. It waits at most the
// shutdown timeout per destination; what a destination did not take
// stays in its spool.
func (a *Agent) Stop() error {
	a.stopOnce.Do(func() { close(a.stop) })
	<-a.done
	if a.follow != nil {
		a.follow.wait()
	}
	return a.stopErr
}

// Done is closed when the agent has stopped.
func (a *Agent) Done() <-chan struct{} { return a.done }

// retryEvery is how often links that failed to attach are tried again.
const retryEvery = 5 * time.Second

// tick drains the source and closes the windows that ended.
func (a *Agent) tick() {
	now := a.deps.Now()
	if a.retryAttach && now.Sub(a.lastRetry) >= retryEvery {
		a.retryAttach, a.lastRetry = false, now
		a.reconcileAll()
	}
	a.drain(now)
	for _, fl := range a.logs {
		fl.live.Advance(now.Unix())
	}
	a.lastTick.Store(now.UnixNano())
	a.snapshot(now)
}

// drain moves the source's counts into the flow logs.
func (a *Agent) drain(now time.Time) {
	byID := a.byID()
	lost, err := pipeline.DrainLive(a.src, now.Unix(), a.lives, func(d *capture.Delta) {
		if at := byID[d.Key.Interface]; at != nil {
			at.packets += d.Packets
			at.bytes += d.Bytes
		}
	})
	if err != nil {
		a.log.Error("drain the capture source", "error", err)
		a.metrics.drainErrors.Add(1)
	}
	for id, n := range lost {
		if at := byID[id]; at != nil {
			at.lost += n
			a.log.Warn("packets lost before they were counted: SKIPDATA", "interface", at.link.Name, "netns", at.link.Netns, "packets", n)
		}
		a.metrics.lostDetached.Add(n)
	}
}

// byID indexes the attached links by source id.
func (a *Agent) byID() map[uint32]*attached {
	m := make(map[uint32]*attached, len(a.links))
	for _, at := range a.links {
		m[at.id] = at
	}
	return m
}

// shutdown is Stop on the loop goroutine: detach, drain what is left,
// flush every flow log, release the rest.
func (a *Agent) shutdown() error {
	a.log.Info("stopping: flushing open records")
	var errs []error
	if a.watcher != nil {
		a.watcher.Stop()
	}
	now := a.deps.Now()
	for k, at := range a.links {
		if err := a.src.Detach(at.id); err != nil {
			errs = append(errs, err)
		}
		// Keep them for the last drain's metrics.
		_ = k
	}
	a.drain(now)
	for _, fl := range a.logs {
		fl.live.Advance(now.Unix())
		if err := fl.live.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("flow log %s: %w", fl.id, err))
		}
	}
	a.snapshot(now)
	a.links = map[linkKey]*attached{}
	a.teardown()
	err := errors.Join(errs...)
	if err != nil {
		a.log.Error("stopped with errors", "error", err)
	} else {
		a.log.Info("stopped: every record flushed")
	}
	return err
}

// teardown releases what Start acquired (also after a failed Start).
func (a *Agent) teardown() {
	if a.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = a.server.Shutdown(ctx)
		cancel()
	}
	if a.watcher != nil {
		a.watcher.Stop()
	}
	for _, n := range a.nats {
		n.Stop()
	}
	for _, fl := range a.logs {
		if fl.live != nil {
			_ = fl.live.Stop()
		}
	}
	if a.src != nil {
		_ = a.src.Close()
	}
	if a.cancel != nil {
		a.cancel()
	}
	// Retired spools end with the agent's context: wait until they
	// released their directories.
	a.ret.wg.Wait()
}

// Interface describes an attached interface.
type Interface struct {
	ID       uint32
	Netns    string
	Name     string
	Resolved inventory.Resolved
	FlowLogs []string // ids of the flow logs covering it
}

// Interfaces returns the attached interfaces, sorted by namespace and name.
func (a *Agent) Interfaces() []Interface {
	var out []Interface
	a.do(func() {
		for _, at := range a.links {
			it := Interface{ID: at.id, Netns: at.link.Netns, Name: at.link.Name, Resolved: at.res}
			for _, fl := range at.logs {
				it.FlowLogs = append(it.FlowLogs, fl.id)
			}
			out = append(out, it)
		}
	})
	slices.SortFunc(out, func(x, y Interface) int {
		if x.Netns != y.Netns {
			if x.Netns < y.Netns {
				return -1
			}
			return 1
		}
		if x.Name < y.Name {
			return -1
		} else if x.Name > y.Name {
			return 1
		}
		return 0
	})
	return out
}

// FlowLogIDs returns the ids of the running flow logs.
func (a *Agent) FlowLogIDs() []string {
	var ids []string
	a.do(func() {
		for _, fl := range a.logs {
			ids = append(ids, fl.id)
		}
	})
	return ids
}

// SourceKind is the capture source in use: ebpf or afpacket.
func (a *Agent) SourceKind() string { return a.srcKind }

// MetricsAddr is the address /metrics is served on, "" if none.
func (a *Agent) MetricsAddr() string {
	if a.addr == nil {
		return ""
	}
	return a.addr.String()
}
