package agent

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/flowlog/flowlog/internal/spool"
)

// Reload applies a new configuration while the agent runs. Flow logs that
// are new are opened, flow logs that are gone are flushed (their records
// of the current window too) and closed, and flow logs that did not
// change keep running without losing anything. The inventory, ids,
// account and location, interface filters and followed namespaces take
// effect at once. The capture source and its settings, the spool, the
// metrics address, the drain interval and the log settings need a restart:
// a change to them is reported in the returned warnings and ignored. An
// invalid configuration, or a flow log that cannot be opened, changes
// nothing and is returned as the error.
func (a *Agent) Reload(cfg Config) (warnings []string, err error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case a.follow != nil && cfg.Server == nil:
		return nil, errors.New("reload: server: removed: the agent follows the server until it restarts")
	case a.follow == nil && cfg.Server != nil:
		return nil, errors.New("reload: server: added: restart the agent to follow a server")
	case a.follow != nil:
		// The flow logs stay the server's.
		return a.follow.reloadBase(cfg)
	}
	return a.reloadConfig(cfg)
}

// reloadConfig applies cfg (with defaults, validated) on the loop.
func (a *Agent) reloadConfig(cfg Config) (warnings []string, err error) {
	if !a.do(func() { warnings, err = a.reload(cfg) }) {
		return nil, errors.New("reload: the agent is not running")
	}
	return warnings, err
}

func (a *Agent) reload(cfg Config) ([]string, error) {
	old := a.cfg
	var warnings []string
	keep := func(name string, same bool) {
		if !same {
			warnings = append(warnings, name+" changed: it takes effect at the next start")
		}
	}
	keep("source", cfg.Source == old.Source)
	keep("afpacket", cfg.AFPacket == old.AFPacket)
	keep("ebpf", cfg.EBPF == old.EBPF)
	keep("spool", cfg.Spool == old.Spool)
	keep("metrics-address", cfg.MetricsAddress == old.MetricsAddress)
	keep("drain-interval", cfg.DrainInterval == old.DrainInterval)
	keep("log", cfg.Log == old.Log)
	keep("exclusions", *cfg.Exclusions == *old.Exclusions)
	keep("nat", *cfg.NAT == *old.NAT)
	cfg.Source, cfg.AFPacket, cfg.EBPF, cfg.Spool = old.Source, old.AFPacket, old.EBPF, old.Spool
	cfg.MetricsAddress, cfg.DrainInterval, cfg.Log = old.MetricsAddress, old.DrainInterval, old.Log
	cfg.Exclusions, cfg.NAT = old.Exclusions, old.NAT

	inv, err := a.inventory(cfg)
	if err != nil {
		return nil, fmt.Errorf("reload: %w", err)
	}
	// Open the new flow logs first: if one fails, nothing changes.
	now := a.deps.Now()
	saved := a.inv
	a.inv = inv // destinations take account and region from it
	var kept, opened []*flowLog
	for _, def := range cfg.FlowLogs {
		id := a.flowLogID(def)
		i := slices.IndexFunc(a.logs, func(fl *flowLog) bool { return fl.id == id && reflect.DeepEqual(fl.def, def) })
		if i >= 0 {
			kept = append(kept, a.logs[i])
			continue
		}
		fl, err := a.openFlowLog(def, now)
		if err != nil {
			for _, o := range opened {
				_ = o.live.Stop()
			}
			a.inv = saved
			return nil, fmt.Errorf("reload: %w", err)
		}
		opened = append(opened, fl)
	}
	var removed []*flowLog
	for _, fl := range a.logs {
		if !slices.Contains(kept, fl) {
			removed = append(removed, fl)
		}
	}
	// Everything captured so far goes to the flow logs as they were.
	if s, ok := a.src.(interface{ Settle() }); ok {
		s.Settle()
	}
	a.drain(now)

	a.cfg = cfg
	a.logs = append(kept, opened...)
	a.refreshLives()
	if !slices.Equal(cfg.Netns, old.Netns) {
		a.watcher.Stop()
		if err := a.startWatcher(); err != nil {
			warnings = append(warnings, fmt.Sprintf("netns: %v", err))
		}
		// Namespaces no longer followed go away with their links.
		for ns := range a.known {
			if ns != "" && !a.follows(ns) {
				delete(a.known, ns)
				defer a.forgetNetns(ns) // after its links are detached
			}
		}
	}
	a.reconcileAll()
	a.linksChanged()
	var errs []string
	for _, fl := range removed {
		if fl.out != nil && !slices.ContainsFunc(a.logs, func(o *flowLog) bool { return o.id == fl.id }) {
			fl.out.retire = func(sp *spool.Spool, grace time.Duration) error { return a.retireLive(fl, sp, grace) }
		}
		if err := fl.live.Stop(); err != nil {
			errs = append(errs, fmt.Sprintf("flow log %s: %v", fl.id, err))
		}
		a.log.Info("flow log removed", "flow_log", fl.id)
	}
	for _, fl := range opened {
		a.log.Info("flow log added", "flow_log", fl.id)
	}
	if len(errs) > 0 {
		warnings = append(warnings, "removed flow logs: "+strings.Join(errs, "; "))
	}
	for _, w := range warnings {
		a.log.Warn("reload", "warning", w)
	}
	a.log.Info("configuration reloaded", "flow_logs", len(a.logs), "added", len(opened), "removed", len(removed))
	return warnings, nil
}

// follows reports whether the configuration follows namespace ns.
func (a *Agent) follows(ns string) bool {
	return a.cfg.Netns.All() || slices.Contains(a.cfg.Netns, ns)
}
