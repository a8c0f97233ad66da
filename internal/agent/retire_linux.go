package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/goccy/go-yaml"

	"github.com/flowlog/flowlog/internal/inventory"
	"github.com/flowlog/flowlog/internal/sink"
	"github.com/flowlog/flowlog/internal/spool"
)

// Retiring: records a flow log accepted are never lost because the flow
// log went away. When a flow log is removed (reload, delete-flow-logs on
// the server) while its spool still holds records, the spool and its
// destination stay open in the background and keep retrying until the
// backlog is delivered; then the spool directory is removed. So that a
// restart does not strand the backlog either, every flow log's spool
// directory holds retireFile, which says how to reopen its destination:
// at Start, a spool directory of no configured flow log that has one is
// retired the same way.

// retireFile is the file in a flow log's spool directory describing its
// destination. It holds the flow log's definition (no secrets: a
// definition has none) and the account and region of its object layout.
const retireFile = "destination.yaml"

// retireInfo is the content of retireFile.
type retireInfo struct {
	FlowLogID string `yaml:"flow-log-id"`
	AccountID string `yaml:"account-id"`
	Region    string `yaml:"region"`
	// DeliveryRole is FlowLog.DeliveryRole, which the definition's YAML
	// leaves out: the role's sessions come from the server followed.
	DeliveryRole string  `yaml:"delivery-role,omitempty"`
	FlowLog      FlowLog `yaml:"flow-log"`
}

// retirer holds the retired spools of an agent. Retirees run on their
// own goroutines; the map is shared with the loop and the metrics.
type retirer struct {
	mu   sync.Mutex
	byID map[string]*retiree
	wg   sync.WaitGroup
}

// retiree is one retired spool delivering its backlog.
type retiree struct {
	id, dest, dir string
	ctx           context.Context
	cancel        context.CancelFunc
	done          chan struct{} // closed once it ended and left the map
	announced     atomic.Bool   // "delivering" was logged

	mu        sync.Mutex
	sp        *spool.Spool // nil while the destination cannot be opened
	diskBytes int64        // segment bytes found on disk, until sp is open
}

// backlog is the retiree's undelivered bytes.
func (r *retiree) backlog() int64 {
	r.mu.Lock()
	sp, disk := r.sp, r.diskBytes
	r.mu.Unlock()
	if sp == nil {
		return disk
	}
	return sp.Stats().BacklogBytes
}

// retiredSnap is a retired spool as /metrics shows it.
type retiredSnap struct {
	id           string
	backlogBytes int64
}

// retiredSnapshot lists the retired spools, for the metrics snapshot.
func (a *Agent) retiredSnapshot() []retiredSnap {
	a.ret.mu.Lock()
	rs := make([]*retiree, 0, len(a.ret.byID))
	for _, r := range a.ret.byID {
		rs = append(rs, r)
	}
	a.ret.mu.Unlock()
	out := make([]retiredSnap, 0, len(rs))
	for _, r := range rs {
		out = append(out, retiredSnap{id: r.id, backlogBytes: r.backlog()})
	}
	return out
}

// RetiredSpools returns the ids of the removed flow logs whose spools are
// still delivering their backlog, sorted (the map's order changes from
// call to call).
func (a *Agent) RetiredSpools() []string {
	a.ret.mu.Lock()
	ids := slices.Collect(maps.Keys(a.ret.byID))
	a.ret.mu.Unlock()
	slices.Sort(ids)
	return ids
}

// writeRetireInfo writes retireFile into the spool directory of flow log
// id (created if missing), replacing it atomically.
func (a *Agent) writeRetireInfo(def FlowLog, id string) error {
	dir := filepath.Join(a.cfg.Spool.Dir, id)
	info := retireInfo{FlowLogID: id, AccountID: a.inv.AccountID(), Region: a.inv.Region(), DeliveryRole: def.DeliveryRole, FlowLog: def}
	info.FlowLog.Credentials = nil
	data, err := yaml.Marshal(info)
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(dir, retireFile), err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create spool directory: %w", err)
	}
	tmp := filepath.Join(dir, "."+retireFile+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, retireFile)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", filepath.Join(dir, retireFile), err)
	}
	return nil
}

// readRetireInfo reads dir's retireFile; false if there is none.
func readRetireInfo(dir string) (retireInfo, bool, error) {
	path := filepath.Join(dir, retireFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return retireInfo{}, false, nil
	}
	if err != nil {
		return retireInfo{}, false, fmt.Errorf("read %s: %w", path, err)
	}
	var info retireInfo
	if err := yaml.Unmarshal(data, &info); err != nil {
		return retireInfo{}, false, fmt.Errorf("read %s: %w", path, err)
	}
	if info.FlowLogID != filepath.Base(dir) || info.FlowLog.Destination == "" {
		return retireInfo{}, false, fmt.Errorf("read %s: flow-log-id %q and flow-log.destination %q: want the directory's name and a destination", path, info.FlowLogID, info.FlowLog.Destination)
	}
	return info, true, nil
}

// takeBack ends the retirement of flow log id's spool, if there is one,
// before the flow log is opened again: the backlog left in the directory
// is delivered by the flow log's own spool.
func (a *Agent) takeBack(id string) {
	a.ret.mu.Lock()
	r := a.ret.byID[id]
	a.ret.mu.Unlock()
	if r == nil {
		return
	}
	r.cancel()
	<-r.done
	a.log.Info("retired spool taken back by the flow log opened again", "flow_log", id)
}

// retireLive retires the spool of a removed flow log, called by its
// sink's Close once the flow log wrote its last records. It waits until
// the backlog is delivered, the destination fails, or grace passes,
// whichever comes first; delivery then goes on in the background.
func (a *Agent) retireLive(fl *flowLog, sp *spool.Spool, grace time.Duration) error {
	r := a.newRetiree(fl.id, fl.def.Destination)
	r.sp = sp
	a.ret.wg.Add(1)
	go a.runRetiree(r, nil)
	t := time.NewTimer(grace)
	defer t.Stop()
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case <-r.done:
			return nil
		case <-t.C:
			a.announce(r, "the destination did not take the backlog within shutdown-timeout")
			return nil
		case <-poll.C:
			if fl.status.failing() {
				a.announce(r, "the destination fails")
				return nil
			}
		}
	}
}

// failing reports whether the destination's latest call failed.
func (d *delivery) failing() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err != nil
}

// announce logs that r delivers its backlog in the background.
func (a *Agent) announce(r *retiree, why string) {
	if r.announced.Swap(true) {
		return
	}
	a.log.Info("retired spool: the removed flow log's backlog is delivered in the background until its destination took it",
		"flow_log", r.id, "destination", r.dest, "backlog_bytes", r.backlog(), "reason", why, "spool", r.dir)
}

// newRetiree registers a retiree for flow log id.
func (a *Agent) newRetiree(id, dest string) *retiree {
	ctx, cancel := context.WithCancel(a.ctx)
	r := &retiree{id: id, dest: dest, dir: filepath.Join(a.cfg.Spool.Dir, id), cancel: cancel, done: make(chan struct{})}
	a.ret.mu.Lock()
	if a.ret.byID == nil {
		a.ret.byID = map[string]*retiree{}
	}
	a.ret.byID[id] = r
	a.ret.mu.Unlock()
	r.ctx = ctx
	return r
}

// runRetiree delivers r's backlog: it opens the destination and spool
// (info; nil when r.sp is the open spool of a removed flow log), retrying
// until it can, then closes the spool, which retries until the
// destination took everything. Then the spool directory is removed. When
// r is cancelled (Agent Stop, the flow log opened again) what is left
// stays in the directory.
func (a *Agent) runRetiree(r *retiree, info *retireInfo) {
	defer a.ret.wg.Done()
	defer close(r.done)
	defer func() {
		a.ret.mu.Lock()
		if a.ret.byID[r.id] == r {
			delete(a.ret.byID, r.id)
		}
		a.ret.mu.Unlock()
		r.cancel()
	}()
	ctx := r.ctx
	if r.sp == nil {
		wait := spool.DefaultRetryInitial
		for attempt := 0; ; attempt++ {
			sp, err := a.openRetired(ctx, *info)
			if err == nil {
				r.mu.Lock()
				r.sp = sp
				r.mu.Unlock()
				break
			}
			if attempt == 0 {
				a.log.Warn("retired spool: cannot open its destination: retrying with backoff", "flow_log", r.id, "destination", r.dest, "error", err)
			} else {
				a.log.Debug("retired spool: cannot open its destination", "flow_log", r.id, "error", err)
			}
			if !sleep(ctx, wait) {
				a.log.Info("retired spool: stopped before its destination could be opened; the backlog stays for the next start", "flow_log", r.id, "spool", r.dir, "backlog_bytes", r.backlog())
				return
			}
			wait = min(2*wait, a.cfg.Spool.Retry)
		}
	}
	sp := r.sp
	stopped := make(chan struct{})
	stopOnCancel := context.AfterFunc(ctx, func() { sp.Stop(); close(stopped) })
	before := sp.Stats()
	err := sp.Close()
	if !stopOnCancel() {
		<-stopped
	}
	sp.Stop()
	after := sp.Stats()
	delivered := after.DeliveredRecords - before.DeliveredRecords
	if err != nil {
		if r.announced.Load() {
			a.log.Info("retired spool: ended before its backlog was delivered; it stays in the spool directory (delivered after the next start, or by the flow log if it is added again)", "flow_log", r.id, "destination", r.dest, "backlog_bytes", after.BacklogBytes, "spool", r.dir, "error", err)
		}
		return
	}
	if rerr := os.RemoveAll(r.dir); rerr != nil {
		a.log.Warn("retired spool: backlog delivered, but its directory cannot be removed", "flow_log", r.id, "spool", r.dir, "error", rerr)
	}
	if r.announced.Load() {
		a.log.Info("retired spool: backlog delivered, spool removed", "flow_log", r.id, "destination", r.dest,
			"bytes_acked", after.AckedBytes-before.AckedBytes, "records_delivered", delivered, "retries", after.Retries-before.Retries)
	}
}

// openRetired opens the destination and spool info describes.
func (a *Agent) openRetired(ctx context.Context, info retireInfo) (*spool.Spool, error) {
	def := info.FlowLog
	def.ID, def.DeliveryRole = info.FlowLogID, info.DeliveryRole
	id := info.FlowLogID
	format, err := parseFormat(def.Format)
	if err != nil {
		return nil, err
	}
	kind, _, err := sink.ParseDestination(def.Destination)
	if err != nil {
		return nil, err
	}
	open := a.deps.Openers[kind]
	if open == nil {
		return nil, fmt.Errorf("destination %s: the agent cannot write to %s destinations", def.Destination, kind)
	}
	inv, err := inventory.New(nil, inventory.Overrides{AccountID: info.AccountID, Region: info.Region})
	if err != nil {
		inv = a.inv
	}
	openDef := def
	var creds *aws.CredentialsCache
	if def.DeliveryRole != "" && a.follow != nil {
		creds = a.follow.deliveryCredentials(id)
		openDef.Credentials = creds
	}
	dest, err := open(ctx, openDef, id, format, inv)
	if err != nil {
		return nil, err
	}
	if creds != nil {
		dest.Sink = &roleSink{inner: dest.Sink, role: def.DeliveryRole, creds: creds}
	}
	sc := a.spoolConfig(id, def, dest)
	sp, err := spool.New(sc, dest.Sink)
	if err != nil {
		dest.Sink.Close()
		return nil, err
	}
	if err := sp.Start(ctx); err != nil {
		dest.Sink.Close()
		return nil, err
	}
	return sp, nil
}

// spoolConfig is the spool configuration of flow log id.
func (a *Agent) spoolConfig(id string, def FlowLog, dest Destination) spool.Config {
	sc := spool.DefaultConfig(filepath.Join(a.cfg.Spool.Dir, id))
	sc.MaxBytes = a.cfg.Spool.MaxBytes
	sc.Sync = spool.SyncPolicy(a.cfg.Spool.Sync)
	sc.Retry.Max = a.cfg.Spool.Retry
	sc.Interval = def.Interval
	if dest.HoldsPeriod {
		sc.Durable = spool.ObjectDurable
	}
	log := a.log.With("flow_log", id)
	sc.OnError = func(err error) { log.Warn("destination", "error", err) }
	return sc
}

// retireOrphans retires, at Start, the spool directories of flow logs
// that are not configured: those with retireFile are delivered and
// removed; those an older agent wrote are left alone with a warning.
func (a *Agent) retireOrphans() {
	if a.cfg.Spool.Dir == "none" {
		return
	}
	des, err := os.ReadDir(a.cfg.Spool.Dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			a.log.Warn("spool directories of removed flow logs not looked for", "spool_dir", a.cfg.Spool.Dir, "error", err)
		}
		return
	}
	configured := map[string]bool{}
	for _, def := range a.cfg.FlowLogs {
		configured[a.flowLogID(def)] = true
	}
	if a.follow != nil {
		// Flow logs of the server's set that do not run (yet) keep
		// their spools for when they do.
		a.follow.mu.Lock()
		for _, in := range a.follow.set.FlowLogs {
			configured[in.FlowLogID] = true
		}
		a.follow.mu.Unlock()
	}
	for _, de := range des {
		if !de.IsDir() || configured[de.Name()] {
			continue
		}
		dir := filepath.Join(a.cfg.Spool.Dir, de.Name())
		segBytes, segs := spool.SegmentBytes(dir)
		info, ok, err := readRetireInfo(dir)
		switch {
		case err != nil:
			a.log.Warn("spool of a removed flow log left alone: its destination file cannot be read", "spool", dir, "backlog_bytes", segBytes, "error", err)
			continue
		case !ok:
			if segs > 0 {
				a.log.Warn("spool of a removed flow log left alone: an older agent wrote it without "+retireFile+", so where its records go is unknown; "+
					"to deliver them, configure a flow log with id "+de.Name()+" and its former destination, start (or reload) the agent until its spool backlog is 0, then remove the flow log",
					"spool", dir, "segment_bytes", segBytes)
			}
			continue
		}
		r := a.newRetiree(info.FlowLogID, info.FlowLog.Destination)
		r.diskBytes = segBytes
		a.announce(r, "its flow log is no longer configured")
		a.ret.wg.Add(1)
		go a.runRetiree(r, &info)
	}
}
